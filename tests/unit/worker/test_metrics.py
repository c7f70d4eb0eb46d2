"""Worker metrics: what a chunk adds, off by default, multi-process mode chosen in time."""

from __future__ import annotations

import subprocess
import sys

from prometheus_client import CollectorRegistry

from claimpay.envelope import Outcome, RowStatus, outcome
from claimpay.messaging import APPLY_CHUNK, NOTIFY_JOB
from worker import metrics
from worker.observability import task_fields


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_a_recorded_chunk_counts_its_rows_by_database_and_outcome() -> None:
    registry = CollectorRegistry()
    recorder = metrics.WorkerMetrics(registry)
    outcomes = [
        outcome(0, RowStatus.CREATED, 1),
        outcome(1, RowStatus.UPDATED, 2),
        outcome(2, RowStatus.INVALID, 3, "x"),
        outcome(3, RowStatus.UNAVAILABLE, 4, "down"),
        Outcome(4, 418, "odd", 5),
    ]
    recorder.chunk_recorded("acme", outcomes, 0.2)
    recorder.chunk_recorded("acme", [outcome(5, RowStatus.CREATED, 6)], 0.0)  # skipped: no latency
    assert value(registry, "claimpay_worker_rows_total", database="acme", outcome="created") == 2
    for label in ("updated", "invalid", "unavailable", "other"):
        assert value(registry, "claimpay_worker_rows_total", database="acme", outcome=label) == 1
    assert value(registry, "claimpay_worker_chunks_total", database="acme") == 2
    assert value(registry, "claimpay_worker_chunk_duration_seconds_count", database="acme") == 1
    recorder.chunk_recorded("acme", outcomes, 0.1, dry_run=True)
    assert value(registry, "claimpay_worker_rows_total", database="acme", outcome="dry_run") == 5
    assert value(registry, "claimpay_worker_rows_total", database="acme", outcome="created") == 2


def test_task_runs_and_retries_are_counted() -> None:
    registry = CollectorRegistry()
    recorder = metrics.WorkerMetrics(registry)
    recorder.task_started()
    assert value(registry, "claimpay_worker_chunks_in_progress") == 1
    recorder.retry_scheduled()
    recorder.task_ended("retried", 0.5)
    recorder.task_started()
    recorder.task_ended("succeeded", 0.1)
    assert value(registry, "claimpay_worker_chunks_in_progress") == 0
    assert value(registry, "claimpay_worker_chunk_retries_total") == 1
    assert value(registry, "claimpay_worker_chunk_tasks_total", state="retried") == 1
    assert value(registry, "claimpay_worker_chunk_tasks_total", state="succeeded") == 1


def test_metrics_are_off_unless_a_node_turned_them_on() -> None:
    assert type(metrics.current()) is metrics.MetricsOff


def test_task_context_is_ids_only() -> None:
    assert task_fields(APPLY_CHUNK, ("9f", 3)) == {"jobId": "9f", "chunk": 3}
    assert task_fields(NOTIFY_JOB, ["9f"]) == {"jobId": "9f"}
    assert task_fields("celery.ping", ("x",)) == {}


def test_loading_the_worker_app_leaves_prometheus_client_unloaded() -> None:
    """The node's main process must set the multi-process directory before that import."""
    code = (
        "import sys, worker.celery_app, worker.chunks, worker.tasks; "
        "sys.exit(1 if 'prometheus_client' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
