"""Logs and metrics of a worker node, wired to Celery's signals (tasks stay thin).

- `setup_logging`: claimpay's JSON (or text) logging instead of Celery's own.
- `worker_init` (main process, before the pool forks): the metrics directory;
  `worker_ready`: the node's `/metrics` server; `worker_shutdown`: both go away.
- `task_prerun` / `task_postrun` / `task_retry` (in the process running the task): the
  task's job ID and chunk number on every log line, task counts, latency, retries.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    task_retry,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from claimpay.logs import configure_logging, reset_context
from claimpay.messaging import APPLY_CHUNK
from claimpay.settings import Settings
from worker import metrics

TASK_STATES = {"SUCCESS": "succeeded", "RETRY": "retried", "FAILURE": "failed"}


class NodeHooks:
    """The signal handlers of the worker nodes started from one Celery app."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.exporters: list[metrics.Exporter] = []
        self.started: dict[str, float] = {}

    def ours(self, sender: Any) -> bool:
        return getattr(sender, "app", None) is self.app

    def logging(self, loglevel: Any = None, **_: Any) -> None:
        configure_logging(self.settings.log_format, loglevel or self.settings.log_level)

    def init(self, sender: Any = None, **_: Any) -> None:
        if self.ours(sender) and (exporter := metrics.prepare_node(self.settings)):
            self.exporters.append(exporter)

    def ready(self, sender: Any = None, **_: Any) -> None:
        if self.ours(sender):
            for exporter in self.exporters:
                address, port = (
                    self.settings.worker_metrics_address,
                    self.settings.worker_metrics_port,
                )
                exporter.start(address, port)

    def shutdown(self, **_: Any) -> None:
        while self.exporters:
            self.exporters.pop().stop()

    def prerun(self, task_id: str = "", task: Any = None, args: Any = (), **_: Any) -> None:
        if not self.ours(task):
            return
        fields = task_fields(getattr(task, "name", ""), args)
        reset_context(**fields)
        if "chunk" in fields:
            self.started[task_id] = time.perf_counter()
            metrics.current().task_started()

    def postrun(
        self, task_id: str = "", task: Any = None, state: str | None = "", **_: Any
    ) -> None:
        if not self.ours(task):
            return
        began = self.started.pop(task_id, None)
        if began is not None:
            seconds = time.perf_counter() - began
            # No state when the pool process running the task was killed mid-task.
            ended = TASK_STATES.get(state, state.lower()) if state else "lost"
            metrics.current().task_ended(ended, seconds)
        reset_context()

    def retry(self, sender: Any = None, **_: Any) -> None:
        if self.ours(sender) and sender.name == APPLY_CHUNK:
            metrics.current().retry_scheduled()


def install_observability(app: Celery, settings: Settings) -> None:
    """Connect the logging and metrics hooks of worker nodes started from `app`."""
    hooks = NodeHooks(app, settings)
    setup_logging.connect(hooks.logging, weak=False)
    worker_init.connect(hooks.init, weak=False)
    worker_ready.connect(hooks.ready, weak=False)
    worker_shutdown.connect(hooks.shutdown, weak=False)
    task_prerun.connect(hooks.prerun, weak=False)
    task_postrun.connect(hooks.postrun, weak=False)
    task_retry.connect(hooks.retry, weak=False)
    worker_process_shutdown.connect(_process_exited, weak=False, dispatch_uid="claimpay-mpd")


def _process_exited(**_: Any) -> None:
    metrics.process_exited(os.getpid())


def task_fields(name: str, args: Any) -> dict[str, object]:
    """The log context of a claimpay task from its arguments (IDs only, by design)."""
    if not name.startswith("claimpay.") or not isinstance(args, list | tuple) or not args:
        return {}
    fields: dict[str, object] = {"jobId": args[0]}
    if name == APPLY_CHUNK and len(args) > 1:
        fields["chunk"] = args[1]
    return fields
