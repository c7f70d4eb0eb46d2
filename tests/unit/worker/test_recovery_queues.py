"""Recovery queues a chunk again on its own job's queue, fast or main."""

from __future__ import annotations

import time

import orjson

from claimpay.jobstore import JobStore
from tests.factories import make_row, make_settings
from tests.fakes import RecordingEnqueuer as QueueRecorder
from worker.recovery import sweep

SETTINGS = make_settings(stuck_after_s=60)


def store_job(store: JobStore, job_id: str, queue: str | None) -> None:
    store.begin(job_id, entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    store.write_rows(job_id, {0: [orjson.dumps([0, make_row(1)])]}, {})
    store.seal(job_id, total=1, chunk_nos=[0], queue=queue)


def test_stalled_chunks_go_back_to_the_queue_their_job_was_sealed_with(
    job_store: JobStore,
) -> None:
    store_job(job_store, "small", "claimpay.fast")
    store_job(job_store, "large", "claimpay")
    store_job(job_store, "legacy", None)
    recorder = QueueRecorder()
    sweep(job_store, recorder, SETTINGS, lambda: 0, now=time.time() + 61)
    assert sorted(recorder.sent) == [
        ("large", 0, "claimpay"),
        ("legacy", 0, None),
        ("small", 0, "claimpay.fast"),
    ]
