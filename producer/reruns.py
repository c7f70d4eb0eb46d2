"""Rerun only what failed (`POST /jobs/{id}/retry`): prepare a new round of a finished
job for its failed rows.

"Rerun" here, so that "retry" means one thing in the code: a Celery task retried after a
transient fault (`worker.tasks`).

The rows whose last status is in the chosen set (default: 5xx) are written back to their
chunks, their earlier results kept as the rows' attempt history, the job's counters
reduced by what they counted, and the job queued again under the same ID. Each round
has its own ledger key, so the retried rows are really applied again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from claimpay.envelope import STANDARD_BODIES, Outcome, RowStatus
from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore
from producer.errors import RerunBusy

BUSY = "A retry of this job is being prepared."
MAX_ATTEMPTS_KEPT = 3
"""Earlier results a rerun row keeps (the latest ones): rounds of reruns must not grow a
job's history in Redis without end."""


@dataclass
class RerunPlan:
    """What a rerun queues again: row counts by chunk, and rows that could not be rerun."""

    rows_by_chunk: dict[int, int] = field(default_factory=dict)
    unavailable: int = 0

    @property
    def rows(self) -> int:
        return sum(self.rows_by_chunk.values())


def prepare_rerun(
    store: JobStore, meta: JobMeta, statuses: Collection[int], lock_ttl_s: int
) -> RerunPlan:
    """Queue-ready state for rerunning `meta`'s rows whose status is in `statuses`.

    The caller enqueues `plan.rows_by_chunk`; nothing changes when the plan is empty.
    `RerunBusy` while another rerun holds the job's lock (for at most `lock_ttl_s`).
    """
    if not store.lock_rerun(meta.job_id, lock_ttl_s):
        raise RerunBusy(BUSY)
    try:
        # A concurrent rerun may have run while this one waited: decide on today's job.
        current = store.meta(meta.job_id)
        if current is None or not current.state.terminal or current.round != meta.round:
            raise RerunBusy(BUSY)
        plan, rows, history, uncounted = _collect(store, meta, statuses)
        if plan.rows_by_chunk:
            store.start_rerun(meta, rows, history, uncounted)
        return plan
    finally:
        store.unlock_rerun(meta.job_id)


def _collect(
    store: JobStore, meta: JobMeta, statuses: Collection[int]
) -> tuple[RerunPlan, dict[int, list[int]], dict[int, list[Any]], Counter[str]]:
    plan = RerunPlan()
    rows: dict[int, list[int]] = {}
    history: dict[int, list[Any]] = {}
    uncounted: Counter[str] = Counter()
    for chunk_no in store.chunk_nos(meta.job_id):
        wanted = {item.position: item for item in store.stored_results(meta.job_id, chunk_no)}
        wanted = {i: item for i, item in wanted.items() if item.status in statuses}
        if not wanted:
            continue
        chosen = [i for i, _ in store.load_rows(meta.job_id, chunk_no) if i in wanted]
        plan.unavailable += len(wanted) - len(chosen)
        if not chosen:
            continue
        rows[chunk_no] = chosen
        plan.rows_by_chunk[chunk_no] = len(chosen)
        earlier = store.attempts(meta.job_id, chosen)
        for index in chosen:
            item = wanted[index]
            attempts = [*earlier.get(item.position, []), _attempt(item)]
            history[item.position] = attempts[-MAX_ATTEMPTS_KEPT:]
            uncounted.update(_counted_as(item.status))
    return plan, rows, history, uncounted


def _attempt(item: Outcome) -> dict[str, Any]:
    body = item.body if item.body is not None else STANDARD_BODIES[item.status]
    return {"status": item.status, "body": body}


def _counted_as(status: int) -> dict[str, int]:
    """The job counters a row with `status` added to when it was recorded."""
    if status == RowStatus.CREATED:
        return {"processed": 1, "created": 1}
    if status == RowStatus.UPDATED:
        return {"processed": 1, "updated": 1}
    if status == RowStatus.NOT_PROCESSED:
        return {"processed": 1, "notProcessed": 1}
    return {"processed": 1, "failed": 1}
