"""A worker node's Prometheus metrics: chunk tasks, retries, row outcomes, chunk latency.

Multi-process: the node's main process makes a directory of its own and sets
`PROMETHEUS_MULTIPROC_DIR` (`claimpay.multiproc`) before the pool forks, every pool process
writes its samples there, and the main process serves the merged view on
`worker_metrics_port`. `prometheus_client` decides that mode when first imported, so this
module imports it only inside functions, after the directory is set (and
`claimpay.multiproc.prepare` switches it when something imported it earlier).

Labels are bounded: database names (configuration), outcomes, task states. Never a job ID.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from claimpay import multiproc
from claimpay.envelope import Outcome, RowStatus
from claimpay.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("claimpay.worker")

CHUNK_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
ROW_OUTCOMES: dict[int, str] = {
    RowStatus.CREATED: "created",
    RowStatus.UPDATED: "updated",
    RowStatus.INVALID: "invalid",
    RowStatus.NOT_PROCESSED: "not_processed",
    RowStatus.REJECTED: "rejected",
    RowStatus.INTERNAL_ERROR: "error",
    RowStatus.UNAVAILABLE: "unavailable",
}
"""Row status -> `outcome` label; any other status counts as `other`."""


class Metrics(Protocol):
    """What a worker process records about its chunk tasks."""

    def task_started(self) -> None: ...

    def task_ended(self, state: str, seconds: float) -> None: ...

    def retry_scheduled(self) -> None: ...

    def chunk_recorded(
        self, database: str, outcomes: Sequence[Outcome], seconds: float, dry_run: bool = False
    ) -> None:
        """A chunk's results were stored; `seconds` > 0 when its rows were applied; a dry
        run's rows count as `dry_run` whatever they would have done."""


class MetricsOff:
    """`Metrics` of a worker whose metrics are off: records nothing."""

    def task_started(self) -> None:
        pass

    def task_ended(self, state: str, seconds: float) -> None:
        pass

    def retry_scheduled(self) -> None:
        pass

    def chunk_recorded(
        self, database: str, outcomes: Sequence[Outcome], seconds: float, dry_run: bool = False
    ) -> None:
        pass


class WorkerMetrics:
    """`Metrics` in Prometheus, on `registry` (None in multi-process mode: files only)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.tasks = Counter(
            "claimpay_worker_chunk_tasks",
            "Chunk task runs, by how they ended: succeeded, retried, failed.",
            ["state"],
            registry=registry,
        )
        self.task_seconds = Histogram(
            "claimpay_worker_chunk_task_duration_seconds",
            "Time a chunk task ran (claim, apply, record), by how it ended.",
            ["state"],
            buckets=CHUNK_SECONDS_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "claimpay_worker_chunks_in_progress",
            "Chunk tasks running now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.retries = Counter(
            "claimpay_worker_chunk_retries",
            "Chunk retries scheduled after a transient database fault.",
            registry=registry,
        )
        self.chunks = Counter(
            "claimpay_worker_chunks",
            "Chunks whose results this worker recorded, by database.",
            ["database"],
            registry=registry,
        )
        self.rows = Counter(
            "claimpay_worker_rows",
            "Row results this worker recorded, by database and outcome.",
            ["database", "outcome"],
            registry=registry,
        )
        self.chunk_seconds = Histogram(
            "claimpay_worker_chunk_duration_seconds",
            "Time to load, apply and record a chunk whose rows were applied, by database.",
            ["database"],
            buckets=CHUNK_SECONDS_BUCKETS,
            registry=registry,
        )

    def task_started(self) -> None:
        self.in_progress.inc()

    def task_ended(self, state: str, seconds: float) -> None:
        self.in_progress.dec()
        self.tasks.labels(state).inc()
        self.task_seconds.labels(state).observe(seconds)

    def retry_scheduled(self) -> None:
        self.retries.inc()

    def chunk_recorded(
        self, database: str, outcomes: Sequence[Outcome], seconds: float, dry_run: bool = False
    ) -> None:
        self.chunks.labels(database).inc()
        counts: dict[str, int] = {}
        for item in outcomes:
            label = "dry_run" if dry_run else ROW_OUTCOMES.get(item.status, "other")
            counts[label] = counts.get(label, 0) + 1
        for label, count in counts.items():
            self.rows.labels(database, label).inc(count)
        if seconds > 0:
            self.chunk_seconds.labels(database).observe(seconds)


_lock = threading.Lock()
_enabled = False
"""Set in a node's main process when its metrics are on; pool processes inherit it."""
_current: Metrics = MetricsOff()
_current_pid = 0


def current() -> Metrics:
    """This process's metrics: real in a worker node with metrics on, else a no-op."""
    global _current, _current_pid
    if _current_pid == os.getpid():
        return _current
    with _lock:
        if _current_pid != os.getpid():
            on = multiproc.active_dir() is not None and _enabled
            _current = WorkerMetrics(registry=None) if on else MetricsOff()
            _current_pid = os.getpid()
    return _current


@dataclass
class Exporter:
    """The node's `/metrics` HTTP server, in its main process."""

    directory: Path
    server: Any = None

    def start(self, address: str, port: int) -> None:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.directory))  # type: ignore[no-untyped-call]
        self.server, _ = start_http_server(port, addr=address, registry=registry)
        log.info("worker metrics on http://%s:%d/metrics", address, port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        multiproc.cleanup(self.directory)


def prepare_node(settings: Settings) -> Exporter | None:
    """In a worker node's main process, before the pool forks: enter multi-process mode
    when `worker_metrics_port` is set. Returns the exporter to start once ready."""
    global _enabled
    if settings.worker_metrics_port == 0:
        return None
    directory = multiproc.prepare("claimpay-worker-metrics-")
    _enabled = True
    return Exporter(directory)


def process_exited(pid: int) -> None:
    """A pool process ended: drop its live gauges (its counters stay in the totals)."""
    directory = multiproc.active_dir()
    if directory is None or not _enabled:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
