"""Recovery sweep on fakeredis: orphaned chunks and stalled jobs are queued again, once."""

from __future__ import annotations

import time

import orjson

from claimpay.envelope import RowStatus, outcome
from claimpay.jobstore import JobStore
from tests.factories import make_row, make_settings
from tests.fakes import RecordingEnqueuer as Recorder
from worker.recovery import sweep

SETTINGS = make_settings(stuck_after_s=60)


def store_job(store: JobStore, job_id: str, chunks: int) -> None:
    store.begin(job_id, entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    store.write_rows(job_id, {c: [orjson.dumps([c, make_row(c)])] for c in range(chunks)}, {})
    store.seal(job_id, total=chunks, chunk_nos=list(range(chunks)))


def test_chunk_of_a_dead_worker_is_queued_again(job_store: JobStore) -> None:
    store_job(job_store, "j1", 3)
    job_store.claim("j1", 0, "alive", 30, 5)
    job_store.claim("j1", 1, "dead", 30, 5)
    job_store.redis.delete(job_store.keys("j1").lease(1))  # its lease lapsed
    recorder = Recorder()
    assert sweep(job_store, recorder, SETTINGS, lambda: 5) == {"j1": [1]}
    assert recorder.queued == [("j1", 1)]
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 5) == {}


def test_stalled_job_with_an_empty_queue_gets_its_unfinished_chunks_again(
    job_store: JobStore,
) -> None:
    store_job(job_store, "j1", 3)
    job_store.claim("j1", 0, "alive", 30, 5)
    job_store.record_chunk("j1", 2, [outcome(2, RowStatus.CREATED, 2)])
    later = time.time() + 61
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 0, now=later) == {"j1": [1]}


def test_stalled_job_behind_a_busy_queue_waits_longer(job_store: JobStore) -> None:
    store_job(job_store, "j1", 2)
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 9, now=time.time() + 61) == {}
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 9, now=time.time() + 601) == {
        "j1": [0, 1]
    }


def test_progressing_job_is_left_alone(job_store: JobStore) -> None:
    store_job(job_store, "j1", 2)
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 0) == {}


def test_finished_and_expired_jobs_leave_the_index(job_store: JobStore) -> None:
    store_job(job_store, "done", 1)
    job_store.record_chunk("done", 0, [outcome(0, RowStatus.CREATED, 0)])
    store_job(job_store, "gone", 1)
    job_store.redis.delete(job_store.keys("gone").meta)
    job_store.redis.zadd(job_store.store_keys.active, {"done": 1})
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 0, now=time.time() + 999) == {}
    assert job_store.active_jobs() == []


def store_windowed_job(store: JobStore, job_id: str, chunks: int, window: int) -> None:
    store.begin(job_id, entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    store.write_rows(job_id, {c: [orjson.dumps([c, make_row(c)])] for c in range(chunks)}, {})
    store.seal(job_id, total=chunks, chunk_nos=list(range(chunks)), window=window)


def test_a_stalled_windowed_job_gets_its_window_filled_from_the_waiting_chunks(
    job_store: JobStore,
) -> None:
    store_windowed_job(job_store, "j1", 5, window=2)
    # Chunk 0 was recorded by a worker that died before queuing the next one.
    job_store.record_chunk("j1", 0, [outcome(0, RowStatus.CREATED, 0)])
    job_store.claim("j1", 1, "alive", 30, 5)
    later = time.time() + 61
    recorder = Recorder()
    assert sweep(job_store, recorder, SETTINGS, lambda: 0, now=later) == {"j1": [2]}
    assert job_store.take_waiting("j1") == [3, 4]


def test_lost_messages_of_a_windowed_job_are_queued_again_and_the_rest_keeps_waiting(
    job_store: JobStore,
) -> None:
    store_windowed_job(job_store, "j1", 5, window=2)  # 0 and 1 queued, their messages lost
    later = time.time() + 61
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 0, now=later) == {"j1": [0, 1]}
    assert job_store.take_waiting("j1") == [2, 3, 4]


def test_a_slow_windowed_job_keeps_its_waiting_chunks(job_store: JobStore) -> None:
    store_windowed_job(job_store, "j1", 5, window=2)
    for chunk in (0, 1):  # both in flight for longer than stuck_after_s, leases renewed
        job_store.claim("j1", chunk, "alive", 30, 5)
    later = time.time() + 61
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 0, now=later) == {}
    assert job_store.chunk_states("j1").waiting == {2, 3, 4}


def test_an_orphan_queued_again_leaves_the_waiting_chunks_waiting(job_store: JobStore) -> None:
    store_windowed_job(job_store, "j1", 3, window=1)
    job_store.claim("j1", 0, "dead", 30, 5)
    job_store.redis.delete(job_store.keys("j1").lease(0))  # its lease lapsed
    assert sweep(job_store, Recorder(), SETTINGS, lambda: 5) == {"j1": [0]}
    assert job_store.take_waiting("j1") == [1, 2]
