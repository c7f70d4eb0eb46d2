"""The backlog read at scrape time: queue depth and the oldest waiting chunk, per queue."""

from __future__ import annotations

import orjson

from claimpay.jobstore import JobStore
from producer.backlog import read_backlog
from tests.factories import make_row

QUEUES = ["q", "q.fast"]


def store_job(store: JobStore, job_id: str, chunks: int, queue: str | None) -> None:
    store.begin(job_id, entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    store.write_rows(job_id, {c: [orjson.dumps([c, make_row(c)])] for c in range(chunks)}, {})
    store.seal(job_id, total=chunks, chunk_nos=list(range(chunks)), queue=queue)


def sealed_at(store: JobStore, job_id: str) -> float:
    score = store.redis.zscore(store.store_keys.active, job_id)
    assert score is not None
    return float(score)


def test_depth_is_the_length_of_each_broker_queue(job_store: JobStore) -> None:
    job_store.redis.lpush("q", "m1", "m2")
    job_store.redis.lpush("q.fast", "m3")
    backlog = read_backlog(job_store.redis, job_store.store_keys, QUEUES)
    assert backlog.depth == {"q": 2, "q.fast": 1}
    assert backlog.oldest_wait_s == {"q": 0.0, "q.fast": 0.0}
    assert backlog.active_jobs == 0


def test_oldest_wait_is_per_queue_and_ignores_chunks_a_worker_holds(job_store: JobStore) -> None:
    store_job(job_store, "old-big", 2, "q")
    store_job(job_store, "new-small", 1, "q.fast")
    now = sealed_at(job_store, "new-small") + 30
    backlog = read_backlog(job_store.redis, job_store.store_keys, QUEUES, now=now)
    assert backlog.active_jobs == 2
    assert backlog.oldest_wait_s["q.fast"] == 30
    assert backlog.oldest_wait_s["q"] == now - sealed_at(job_store, "old-big")

    job_store.claim("new-small", 0, "worker-1", 30, 5)  # held: nothing waits on .fast
    job_store.claim("old-big", 0, "worker-1", 30, 5)  # chunk 1 still waits
    backlog = read_backlog(job_store.redis, job_store.store_keys, QUEUES, now=now)
    assert backlog.oldest_wait_s["q.fast"] == 0
    assert backlog.oldest_wait_s["q"] > 0


def test_jobs_without_a_queue_count_on_the_default_queue(job_store: JobStore) -> None:
    store_job(job_store, "legacy", 1, None)
    now = sealed_at(job_store, "legacy") + 5
    backlog = read_backlog(job_store.redis, job_store.store_keys, QUEUES, now=now)
    assert backlog.oldest_wait_s == {"q": 5, "q.fast": 0.0}
