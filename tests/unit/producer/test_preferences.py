"""Waiting for a job (`Prefer: wait=N`): until it ends, the time is up, or the client left."""

from __future__ import annotations

import anyio

from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore
from producer.preferences import until_terminal


def queued_job(store: JobStore) -> JobMeta:
    store.begin("j1", entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    return store.seal("j1", total=1, chunk_nos=[0])


def test_a_wait_ends_when_the_client_has_gone(job_store: JobStore) -> None:
    meta = queued_job(job_store)
    checks: list[int] = []

    async def gone() -> bool:
        checks.append(1)
        return True

    async def wait() -> JobMeta:
        return await until_terminal(job_store, meta, 30.0, gone)

    assert anyio.run(wait).state.value == "queued"
    assert len(checks) == 1  # asked once, then stopped rather than waiting 30 s


def test_no_wait_reads_nothing(job_store: JobStore) -> None:
    meta = queued_job(job_store)
    job_store.redis.delete(job_store.keys("j1").meta)  # a read would find nothing

    async def wait() -> JobMeta:
        return await until_terminal(job_store, meta, 0.0)

    assert anyio.run(wait) is meta
