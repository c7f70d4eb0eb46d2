"""Queue routing: small jobs go to `<queue>.fast`, workers consume both by default; chunk
tasks are queued in batches, chunk by chunk again when a batch fails."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from kombu.exceptions import BatchPublishError

from claimpay.messaging import CeleryEnqueuer, fast_queue, queue_for, worker_queues
from tests.factories import make_settings


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(1, "claimpay.fast"), (1_000, "claimpay.fast"), (1_001, "claimpay"), (0, "claimpay")],
)
def test_jobs_up_to_the_limit_go_to_the_fast_queue(rows: int, expected: str) -> None:
    assert queue_for(make_settings(fast_queue_max_rows=1_000), rows) == expected


def test_no_fast_queue_when_the_limit_is_zero() -> None:
    settings = make_settings(fast_queue_max_rows=0)
    assert queue_for(settings, 1) == "claimpay"
    assert worker_queues(settings) == ["claimpay"]


def test_workers_consume_the_main_and_the_fast_queue_of_their_deployment() -> None:
    settings = make_settings(queue="tenant-a")
    assert worker_queues(settings) == ["tenant-a", "tenant-a.fast"]
    assert fast_queue("tenant-a") == "tenant-a.fast"


def test_the_worker_app_declares_both_queues() -> None:
    from worker.celery_app import create_celery_app

    app = create_celery_app(make_settings(queue="tenant-b"))
    assert [queue.name for queue in app.conf.task_queues] == ["tenant-b", "tenant-b.fast"]


class _FailingBatch:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            raise BatchPublishError("Redis publish batch failed; delivery is uncertain")


class _Producer:
    def batch(self, max_size: int) -> _FailingBatch:
        return _FailingBatch()


class _App:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    @contextlib.contextmanager
    def producer_or_acquire(self) -> Iterator[_Producer]:
        yield _Producer()

    def send_task(self, name: str, args: tuple[Any, ...], **options: Any) -> None:
        self.sent.append(args)


def test_a_failed_batch_is_sent_again_chunk_by_chunk() -> None:
    app = _App()
    CeleryEnqueuer(app, "q").enqueue_chunks("job", [0, 1, 2], [5, 5, 5])
    assert app.sent == [("job", 0), ("job", 1), ("job", 2)] * 2  # batched, then one by one
