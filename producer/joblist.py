"""Job listing: a database's jobs, newest first, from its index in Redis.

`JobStore.begin` adds every job to its database's sorted set (`StoreKeys.jobs_of`), scored
by submission time. Listing keeps the index tidy as it reads: entries older than the
result TTL, and entries whose job is gone (expired, or a refused request body), are
removed then. Jobs still receiving their rows are not shown, as `GET /jobs/{id}` does not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from claimpay.jobs import JobMeta, JobState
from claimpay.jobstore import JobStore


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing and the number of jobs in the whole listing."""

    jobs: list[JobMeta]
    total: int


def list_jobs(
    store: JobStore,
    databases: Sequence[str],
    *,
    state: JobState | None = None,
    page: int = 1,
    page_size: int = 100,
    now: float | None = None,
) -> JobPage:
    """Page `page` (from 1) of the jobs of `databases` in `state` (any), newest first."""
    entries = store.indexed_jobs(databases, time.time() if now is None else now)
    states = store.states([entry.job_id for entry in entries])
    stale = [entry for entry, found in zip(entries, states, strict=True) if found is None]
    listed = [
        entry
        for entry, found in zip(entries, states, strict=True)
        if found is not None
        and found != JobState.RECEIVING.value
        and (state is None or found == state.value)
    ]
    start = (page - 1) * page_size
    jobs = store.metas([entry.job_id for entry in listed[start : start + page_size]])
    if stale:
        store.unindex(stale)
    return JobPage(jobs, len(listed))
