"""Issue 12, finding 3: pages merged across databases are exact; a job's state index
follows it through its life and its TTL (the cost of a page, O(page size), is measured
on the real Redis in `tests/integration/test_job_listing_cost.py`)."""

from __future__ import annotations

import random
import time

from claimpay.envelope import RowStatus, outcome
from claimpay.jobs import JobState
from claimpay.jobstore import JobStore
from producer.joblist import list_jobs


def assert_pages_merged_across_databases_are_exact(job_store: JobStore) -> None:
    rng = random.Random(12)
    now = time.time()
    expected: list[tuple[float, str]] = []
    for database in ("acme", "demo", "zeta"):
        for n in range(rng.randrange(0, 60)):
            job_id = f"{rng.randrange(16**8):08x}{database}{n}"
            score = now - rng.randrange(20)  # many equal scores: ties ordered by ID
            job_store.begin(
                job_id, entity="claim-prompt-pays", database=database, user="u", chunk_size=1
            )
            job_store.redis.hset(job_store.keys(job_id).meta, "submittedTs", score)
            job_store.seal(job_id, total=0, chunk_nos=[])
            expected.append((score, job_id))
    expected.sort(reverse=True)
    everything = [job_id for _, job_id in expected]
    for page_size in (1, 7, 50):
        for page in range(1, len(everything) // page_size + 3):
            listed = list_jobs(
                job_store, ["acme", "demo", "zeta"], page=page, page_size=page_size, now=now
            )
            start = (page - 1) * page_size
            assert [m.job_id for m in listed.jobs] == everything[start : start + page_size]
            assert listed.total == len(everything)


def test_pages_merged_across_databases_are_exact(job_store: JobStore) -> None:
    assert_pages_merged_across_databases_are_exact(job_store)


def listed_in(store: JobStore, state: JobState) -> list[str]:
    return [meta.job_id for meta in list_jobs(store, ["demo"], state=state).jobs]


def test_a_jobs_state_index_follows_it(job_store: JobStore) -> None:
    job_store.begin("j1", entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    assert list_jobs(job_store, ["demo"]).total == 0  # receiving: not listed
    job_store.seal("j1", total=2, chunk_nos=[0, 1])
    assert listed_in(job_store, JobState.QUEUED) == ["j1"]
    job_store.claim("j1", 0, "w1", 30, 10)
    assert listed_in(job_store, JobState.QUEUED) == []
    assert listed_in(job_store, JobState.RUNNING) == ["j1"]
    job_store.cancel("j1")
    assert listed_in(job_store, JobState.RUNNING) == []
    assert listed_in(job_store, JobState.CANCELLING) == ["j1"]
    job_store.record_chunk("j1", 0, [outcome(0, RowStatus.CREATED, 1)])
    job_store.record_chunk("j1", 1, [outcome(1, RowStatus.CREATED, 2)])
    assert listed_in(job_store, JobState.CANCELLING) == []
    assert listed_in(job_store, JobState.CANCELLED) == ["j1"]
    assert [meta.job_id for meta in list_jobs(job_store, ["demo"]).jobs] == ["j1"]

    job_store.begin("j2", entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    job_store.seal("j2", total=1, chunk_nos=[0])
    job_store.record_chunk("j2", 0, [outcome(0, RowStatus.CREATED, 1)])
    assert listed_in(job_store, JobState.COMPLETED) == ["j2"]
    meta = job_store.meta("j2")
    assert meta is not None
    pipe = job_store.redis.pipeline()
    job_store.relist(pipe, meta, JobState.QUEUED)  # what a retry round does
    pipe.execute()
    assert listed_in(job_store, JobState.COMPLETED) == []
    assert listed_in(job_store, JobState.QUEUED) == ["j2"]


def test_jobs_leave_the_state_indexes_with_their_ttl(job_store: JobStore) -> None:
    job_store.begin("old", entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    job_store.seal("old", total=1, chunk_nos=[0])
    job_store.record_chunk("old", 0, [outcome(0, RowStatus.CREATED, 1)])
    index = job_store.store_keys.jobs_in_state("demo", "completed")
    assert 0 < job_store.redis.ttl(index) <= job_store.ttl_s  # the key itself expires too
    later = time.time() + job_store.ttl_s + 1
    assert list_jobs(job_store, ["demo"], state=JobState.COMPLETED, now=later).total == 0
    assert not job_store.redis.exists(index)  # its last entry was older than the TTL
