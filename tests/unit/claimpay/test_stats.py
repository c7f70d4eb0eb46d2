"""Deployment counters in Redis: a submission, each chunk's rows and each job's end, once."""

from __future__ import annotations

import time

import orjson
import pytest

from claimpay.envelope import RowStatus, outcome
from claimpay.jobstore import JobStore
from claimpay.stats import (
    JOB_DURATION_BUCKETS_S,
    JOB_SIZE_BUCKETS,
    bucket_field,
    read_stats,
    submission_increments,
)
from tests.factories import make_row


def store_job(store: JobStore, job_id: str, rows: int, chunks: int) -> None:
    store.begin(job_id, entity="claim-prompt-pays", database="demo", user="u", chunk_size=rows)
    store.write_rows(job_id, {c: [orjson.dumps([c, make_row(c)])] for c in range(chunks)}, {})
    store.seal(job_id, total=rows, chunk_nos=list(range(chunks)), queue="q.fast")


def test_bucket_field_picks_the_smallest_bound_at_or_above() -> None:
    assert bucket_field("size", 1, JOB_SIZE_BUCKETS) == "size:le:1"
    assert bucket_field("size", 11, JOB_SIZE_BUCKETS) == "size:le:100"
    assert bucket_field("size", 10**7, JOB_SIZE_BUCKETS) == "size:le:+Inf"
    assert submission_increments(11)["size:le:100"] == 1


def test_a_job_is_counted_once_from_submission_to_completion(job_store: JobStore) -> None:
    key = job_store.store_keys.stats
    store_job(job_store, "j1", rows=3, chunks=2)
    after_seal = read_stats(job_store.redis, key)
    assert (after_seal.jobs_submitted, after_seal.rows_submitted) == (1, 3)
    assert after_seal.job_rows.count == 1
    assert dict(after_seal.job_rows.buckets)[10] == 1
    assert dict(after_seal.job_rows.buckets)[1] == 0

    first = [outcome(0, RowStatus.CREATED, 0), outcome(1, RowStatus.INVALID, 1, "bad")]
    assert not job_store.record_chunk("j1", 0, first)
    job_store.record_chunk("j1", 0, first)  # redelivered: counted once
    assert job_store.record_chunk("j1", 1, [outcome(2, RowStatus.UPDATED, 2)])
    stats = read_stats(job_store.redis, key)
    assert stats.rows == {"created": 1, "updated": 1, "failed": 1, "not_processed": 0, "dry_run": 0}
    assert stats.jobs_finished == {"completed": 1, "cancelled": 0}
    assert stats.job_duration_s.count == 1
    assert stats.job_duration_s.buckets[-1] == (float("inf"), 1)
    assert stats.job_duration_s.buckets[0] == (0.5, 1)  # finished at once


@pytest.mark.parametrize(
    ("took_s", "bucket"), [(0.2, 0.5), (7, 10), (3599, 3600), (5 * 3600, float("inf"))]
)
def test_a_jobs_duration_lands_in_the_smallest_bucket_it_fits(
    job_store: JobStore, took_s: float, bucket: float
) -> None:
    store_job(job_store, "j1", rows=1, chunks=1)
    job_store.redis.hset(job_store.keys("j1").meta, "sealedTs", time.time() - took_s)
    assert job_store.record_chunk("j1", 0, [outcome(0, RowStatus.CREATED, 0)])
    buckets = read_stats(job_store.redis, job_store.store_keys.stats).job_duration_s.buckets
    assert next(bound for bound, count in buckets if count == 1) == bucket
    assert [bound for bound, _ in buckets][:-1] == list(JOB_DURATION_BUCKETS_S)


def test_a_cancelled_job_counts_as_cancelled(job_store: JobStore) -> None:
    store_job(job_store, "j2", rows=1, chunks=1)
    job_store.record_chunk("j2", 0, [outcome(0, RowStatus.CREATED, 0)])
    store_job(job_store, "j3", rows=1, chunks=1)
    job_store.cancel("j3")
    job_store.record_chunk("j3", 0, [outcome(0, RowStatus.NOT_PROCESSED, 0)])
    stats = read_stats(job_store.redis, job_store.store_keys.stats)
    assert stats.jobs_finished == {"completed": 1, "cancelled": 1}
    assert stats.rows["not_processed"] == 1
    assert stats.job_duration_s.count == 1  # durations are of completed jobs


def test_a_dry_runs_rows_count_as_dry_run_not_as_written(job_store: JobStore) -> None:
    job_store.begin(
        "j4", entity="claim-prompt-pays", database="demo", user="u", chunk_size=2, dry_run=True
    )
    job_store.seal("j4", total=2, chunk_nos=[0])
    job_store.record_chunk(
        "j4",
        0,
        [outcome(0, RowStatus.CREATED, 0, "Would create"), outcome(1, RowStatus.INVALID, 1)],
    )
    stats = read_stats(job_store.redis, job_store.store_keys.stats)
    assert stats.rows == {"created": 0, "updated": 0, "failed": 0, "not_processed": 0, "dry_run": 2}
    assert stats.jobs_finished["completed"] == 1


def test_empty_stats_read_as_zero(job_store: JobStore) -> None:
    stats = read_stats(job_store.redis, job_store.store_keys.stats)
    assert stats.jobs_submitted == 0
    assert [count for _, count in stats.job_duration_s.buckets] == [0] * (
        len(JOB_DURATION_BUCKETS_S) + 1
    )
