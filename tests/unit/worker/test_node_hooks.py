"""The worker node's task hooks: a task that ends without a state (its pool process was
killed mid-task) is counted as lost, instead of raising in the signal handler."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery import Celery

from claimpay.settings import Settings
from worker import metrics
from worker.observability import NodeHooks


class Recorder:
    def __init__(self) -> None:
        self.ended: list[str] = []

    def task_started(self) -> None:
        pass

    def task_ended(self, state: str, seconds: float) -> None:
        assert seconds >= 0
        self.ended.append(state)


@pytest.mark.parametrize(
    ("state", "counted"), [("SUCCESS", "succeeded"), ("RETRY", "retried"), (None, "lost")]
)
def test_a_chunk_task_end_is_counted_by_its_state(
    monkeypatch: pytest.MonkeyPatch, state: str | None, counted: str
) -> None:
    app = Celery("t")
    hooks = NodeHooks(app, Settings(api_keys={}))
    recorder = Recorder()
    monkeypatch.setattr(metrics, "current", lambda: recorder)
    task = SimpleNamespace(app=app, name="claimpay.apply_chunk")
    hooks.prerun(task_id="t1", task=task, args=("job", 3))
    hooks.postrun(task_id="t1", task=task, state=state)
    assert recorder.ended == [counted]
