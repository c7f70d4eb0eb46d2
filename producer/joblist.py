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
from typing import cast

from claimpay.jobs import JobMeta, JobState
from claimpay.jobstore import JobStore

STATE_BATCH = 1_000


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing and the number of jobs in the whole listing."""

    jobs: list[JobMeta]
    total: int


@dataclass(frozen=True, slots=True)
class _Entry:
    submitted_ts: float
    job_id: str
    database: str


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
    entries = _index_entries(store, databases, time.time() if now is None else now)
    states = _states(store, entries)
    stale = [entry for entry, found in zip(entries, states, strict=True) if found is None]
    listed = [
        entry
        for entry, found in zip(entries, states, strict=True)
        if found is not None
        and found != JobState.RECEIVING.value
        and (state is None or found == state.value)
    ]
    start = (page - 1) * page_size
    jobs = _metas(store, listed[start : start + page_size])
    if stale:
        pipe = store.redis.pipeline(transaction=False)
        for entry in stale:
            pipe.zrem(store.store_keys.jobs_of(entry.database), entry.job_id)
        pipe.execute()
    return JobPage(jobs, len(listed))


def _index_entries(store: JobStore, databases: Sequence[str], now: float) -> list[_Entry]:
    pipe = store.redis.pipeline(transaction=False)
    for database in databases:
        index = store.store_keys.jobs_of(database)
        pipe.zremrangebyscore(index, "-inf", f"({now - store.ttl_s}")
        pipe.zrange(index, 0, -1, withscores=True)
    replies = pipe.execute()
    entries = [
        _Entry(score, _text(member), database)
        for database, members in zip(databases, replies[1::2], strict=True)
        for member, score in cast(list[tuple[bytes, float]], members)
    ]
    entries.sort(key=lambda entry: (entry.submitted_ts, entry.job_id), reverse=True)
    return entries


def _states(store: JobStore, entries: Sequence[_Entry]) -> list[str | None]:
    states: list[str | None] = []
    for start in range(0, len(entries), STATE_BATCH):
        pipe = store.redis.pipeline(transaction=False)
        for entry in entries[start : start + STATE_BATCH]:
            pipe.hget(store.keys(entry.job_id).meta, "state")
        states.extend(_text(found) if found else None for found in pipe.execute())
    return states


def _metas(store: JobStore, entries: Sequence[_Entry]) -> list[JobMeta]:
    pipe = store.redis.pipeline(transaction=False)
    for entry in entries:
        pipe.hgetall(store.keys(entry.job_id).meta)
    metas = []
    for entry, raw in zip(entries, pipe.execute(), strict=True):
        if raw:
            decoded = {_text(key): _text(value) for key, value in raw.items()}
            metas.append(JobMeta.from_hash(entry.job_id, decoded))
    return metas


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
