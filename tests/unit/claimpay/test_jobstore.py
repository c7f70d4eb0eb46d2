"""The job store on fakeredis: intake, exactly-once chunk counting, ordered results, TTLs."""

from __future__ import annotations

import fakeredis
import orjson
import pytest

from claimpay.envelope import NOT_PROCESSED_BODY, Outcome, RowStatus, outcome
from claimpay.jobs import JobMeta, JobState
from claimpay.jobstore import MISSING_RESULT, Claim, JobStore
from tests.factories import make_row

JOB = "job-1"
TTL_S = 3600

# chunk_size 2, keys [1, 2, 3, 1, 4, 1]: rows 3 and 5 repeat key 1 and join chunk 0.
LAYOUT = {0: [(0, 1), (1, 2), (3, 1), (5, 1)], 1: [(2, 3)], 2: [(4, 4)]}
MOVED = {3: 0, 5: 0}
RESULTS: dict[int, list[Outcome]] = {
    0: [
        outcome(0, RowStatus.CREATED, 1),
        outcome(1, RowStatus.CREATED, 2),
        outcome(3, RowStatus.UPDATED, 1),
        outcome(5, RowStatus.UPDATED, 1),
    ],
    1: [outcome(2, RowStatus.CREATED, 3)],
    2: [outcome(4, RowStatus.INVALID, 4, "tax_ID: too long")],
}  # fmt: skip


def encoded(items: list[tuple[int, int]]) -> list[bytes]:
    return [orjson.dumps([index, make_row(key)]) for index, key in items]


def store_job(store: JobStore, job_id: str = JOB) -> JobMeta:
    store.begin(job_id, entity="claim-prompt-pays", database="demo", user="alice", chunk_size=2)
    store.write_rows(job_id, {c: encoded(items) for c, items in LAYOUT.items()}, MOVED)
    return store.seal(job_id, total=6, chunk_nos=list(LAYOUT))


def record_all(store: JobStore, order: list[int]) -> list[bool]:
    return [store.record_chunk(JOB, chunk_no, RESULTS[chunk_no]) for chunk_no in order]


def test_begin_creates_a_receiving_job(job_store: JobStore) -> None:
    job_store.begin(JOB, entity="claim-prompt-pays", database="acme", user="bob", chunk_size=500)
    meta = job_store.meta(JOB)
    assert meta is not None
    assert (meta.state, meta.database, meta.user, meta.chunk_size) == (
        JobState.RECEIVING, "acme", "bob", 500
    )  # fmt: skip
    assert (meta.total, meta.chunks, meta.processed) == (0, 0, 0)
    assert meta.submitted_at.endswith("Z")


def test_meta_of_an_unknown_job_is_none(job_store: JobStore) -> None:
    assert job_store.meta("nope") is None


def test_seal_queues_the_job_with_its_totals(job_store: JobStore) -> None:
    meta = store_job(job_store)
    assert (meta.state, meta.total, meta.chunks, meta.finished_at) == (JobState.QUEUED, 6, 3, None)


def test_seal_of_an_empty_job_completes_it(job_store: JobStore) -> None:
    job_store.begin(JOB, entity="claim-prompt-pays", database="demo", user="a", chunk_size=10)
    meta = job_store.seal(JOB, total=0, chunk_nos=[])
    assert meta.state is JobState.COMPLETED
    assert meta.finished_at is not None
    assert list(job_store.iter_outcomes(meta)) == []


def test_seal_with_a_window_keeps_the_later_chunks_waiting_in_order(job_store: JobStore) -> None:
    job_store.begin(JOB, entity="claim-prompt-pays", database="demo", user="a", chunk_size=1)
    chunk_nos = [0, 1, 3, 4, 7]  # a chunk of only repeated keys is never created
    meta = job_store.seal(JOB, total=5, chunk_nos=chunk_nos, window=2)
    assert (meta.window, meta.chunks) == (2, 5)
    assert job_store.take_waiting(JOB, 2) == [3, 4]
    assert job_store.take_waiting(JOB, 1) == [7]
    assert job_store.take_waiting(JOB, 1) == []
    assert job_store.redis.ttl(job_store.keys(JOB).waiting) == -2  # emptied, gone


def test_seal_without_a_window_or_within_it_keeps_nothing_waiting(job_store: JobStore) -> None:
    for job_id, window in (("j-none", 0), ("j-wide", 9)):
        job_store.begin(job_id, entity="claim-prompt-pays", database="demo", user="a", chunk_size=1)
        meta = job_store.seal(job_id, total=3, chunk_nos=[0, 1, 2], window=window)
        assert meta.window == window
        assert job_store.take_waiting(job_id) == []


def test_the_waiting_chunks_expire_with_the_job(job_store: JobStore) -> None:
    job_store.begin(JOB, entity="claim-prompt-pays", database="demo", user="a", chunk_size=1)
    job_store.seal(JOB, total=3, chunk_nos=[0, 1, 2], window=1)
    keys = job_store.keys(JOB)
    assert 0 < job_store.redis.ttl(keys.waiting) <= job_store.ttl_s
    assert keys.waiting in keys.all_static()


def test_load_rows_returns_index_row_pairs_in_input_order(job_store: JobStore) -> None:
    store_job(job_store)
    assert job_store.load_rows(JOB, 0) == [(i, make_row(k)) for i, k in LAYOUT[0]]
    assert job_store.load_rows(JOB, 7) == []


def test_write_rows_appends_to_a_chunk_across_calls(job_store: JobStore) -> None:
    job_store.write_rows(JOB, {0: encoded([(0, 1)])}, {})
    job_store.write_rows(JOB, {0: encoded([(1, 2)]), 1: []}, {})
    assert [index for index, _ in job_store.load_rows(JOB, 0)] == [0, 1]


def test_first_claim_moves_a_queued_job_to_running(job_store: JobStore) -> None:
    store_job(job_store)
    assert job_store.claim(JOB, 0, "w1", 30, 5) is Claim.RUN
    running = job_store.meta(JOB)
    assert running is not None
    assert running.state is JobState.RUNNING
    assert running.started_at is not None
    assert job_store.claim(JOB, 1, "w1", 30, 5) is Claim.RUN
    again = job_store.meta(JOB)
    assert again is not None
    assert again.started_at == running.started_at


def test_a_leased_chunk_is_busy_for_everyone_else(job_store: JobStore) -> None:
    store_job(job_store)
    assert job_store.claim(JOB, 0, "w1", 30, 5) is Claim.RUN
    assert job_store.claim(JOB, 0, "w2", 30, 5) is Claim.BUSY
    assert job_store.renew_lease(JOB, 0, "w1", 30)
    assert not job_store.renew_lease(JOB, 0, "w2", 30)


def test_a_recorded_chunk_is_done_for_later_claims(job_store: JobStore) -> None:
    store_job(job_store)
    job_store.claim(JOB, 0, "w1", 30, 5)
    job_store.record_chunk(JOB, 0, RESULTS[0])
    assert job_store.claim(JOB, 0, "w2", 30, 5) is Claim.DONE
    assert job_store.claim("ghost", 0, "w2", 30, 5) is Claim.MISSING


def test_a_waiting_retry_may_take_over_its_own_lease(job_store: JobStore) -> None:
    store_job(job_store)
    job_store.claim(JOB, 0, "w1", 30, 5)
    assert job_store.hold_for_retry(JOB, 0, 60, "w1")
    assert job_store.claim(JOB, 0, "w1-retry", 30, 5) is Claim.RUN


def test_a_worker_that_gave_a_chunk_up_never_takes_it_back_for_its_retry(
    job_store: JobStore,
) -> None:
    store_job(job_store)
    job_store.claim(JOB, 0, "stuck", 30, 5)
    job_store.redis.delete(job_store.keys(JOB).lease(0))  # its lease lapsed
    assert job_store.claim(JOB, 0, "other", 30, 5) is Claim.RUN
    assert not job_store.hold_for_retry(JOB, 0, 60, "stuck")
    assert job_store.renew_lease(JOB, 0, "other", 30)


def test_store_time_is_redis_time(job_store: JobStore) -> None:
    seconds, micros = job_store.redis.time()
    assert abs(job_store.now() - (seconds + micros / 1e6)) < 5


def test_a_stalled_mark_lives_until_cleared_or_expired(job_store: JobStore) -> None:
    job_store.mark_stalled("claimpay@h1-1", "h1:1:aa", 30)
    job_store.mark_stalled("claimpay@h1-1", "h1:1:bb", 30)
    assert sorted(job_store.stalled("claimpay@h1-1")) == ["h1:1:aa", "h1:1:bb"]
    assert job_store.stalled("claimpay@h2-1") == []
    job_store.clear_stalled("claimpay@h1-1", "h1:1:aa")
    assert job_store.stalled("claimpay@h1-1") == ["h1:1:bb"]
    key = job_store.store_keys.stalled("claimpay@h1-1")
    job_store.redis.zadd(key, {"h1:1:bb": job_store.now() - 1})  # its mark ran out
    assert job_store.stalled("claimpay@h1-1") == []


def test_a_chunk_claimed_too_often_is_poison(job_store: JobStore) -> None:
    store_job(job_store)
    for attempt in range(3):
        assert job_store.claim(JOB, 0, f"w{attempt}", 30, 3) is Claim.RUN
        job_store.redis.delete(job_store.keys(JOB).lease(0))  # the worker died
    assert job_store.claim(JOB, 0, "w9", 30, 3) is Claim.POISON


def test_cancel_skips_chunks_not_started_and_finishes_as_cancelled(job_store: JobStore) -> None:
    store_job(job_store)
    job_store.claim(JOB, 0, "w1", 30, 5)
    assert job_store.cancel(JOB) is JobState.CANCELLING
    assert job_store.claim(JOB, 1, "w1", 30, 5) is Claim.CANCELLED
    job_store.record_chunk(JOB, 0, RESULTS[0])
    skipped = [outcome(2, RowStatus.NOT_PROCESSED, 3, NOT_PROCESSED_BODY)]
    job_store.record_chunk(JOB, 1, skipped)
    assert job_store.record_chunk(
        JOB, 2, [outcome(4, RowStatus.NOT_PROCESSED, 4, NOT_PROCESSED_BODY)]
    )
    meta = job_store.meta(JOB)
    assert meta is not None
    assert meta.state is JobState.CANCELLED
    assert (meta.processed, meta.created, meta.updated, meta.not_processed) == (6, 2, 2, 2)
    assert job_store.cancel(JOB) is JobState.CANCELLED
    assert job_store.active_jobs() == []


def test_cancel_of_a_completed_or_unknown_job_changes_nothing(job_store: JobStore) -> None:
    store_job(job_store)
    record_all(job_store, [0, 1, 2])
    assert job_store.cancel(JOB) is JobState.COMPLETED
    assert job_store.cancel("ghost") is None


def test_chunk_states_tell_recovery_what_is_claimed_and_leased(job_store: JobStore) -> None:
    store_job(job_store)
    job_store.claim(JOB, 0, "w1", 30, 5)
    job_store.claim(JOB, 1, "w2", 30, 5)
    job_store.redis.delete(job_store.keys(JOB).lease(1))
    job_store.record_chunk(JOB, 2, RESULTS[2])
    states = job_store.chunk_states(JOB)
    assert (states.unfinished, states.claimed, states.leased) == ({0, 1}, {0, 1}, {0})
    job_store.note_requeued(JOB, [1])
    assert job_store.chunk_states(JOB).claimed == {0}


def test_record_chunk_counts_its_outcomes(job_store: JobStore) -> None:
    store_job(job_store)
    assert job_store.record_chunk(JOB, 0, RESULTS[0]) is False
    meta = job_store.meta(JOB)
    assert meta is not None
    assert (meta.processed, meta.created, meta.updated, meta.failed) == (4, 2, 2, 0)
    assert job_store.chunk_states(JOB).unfinished == {1, 2}


def test_record_chunk_twice_counts_once_and_keeps_the_first_results(job_store: JobStore) -> None:
    meta = store_job(job_store)
    job_store.record_chunk(JOB, 2, RESULTS[2])
    before = job_store.meta(JOB)
    assert job_store.record_chunk(JOB, 2, [outcome(4, RowStatus.CREATED, 4)]) is False
    assert job_store.meta(JOB) == before
    record_all(job_store, [0, 1])
    assert list(job_store.iter_outcomes(meta, 4, 5)) == [RESULTS[2][0]]


def test_record_chunk_deletes_the_chunk_rows(job_store: JobStore) -> None:
    store_job(job_store)
    job_store.record_chunk(JOB, 1, RESULTS[1])
    assert job_store.load_rows(JOB, 1) == []
    assert job_store.load_rows(JOB, 0) != []


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_job_completes_exactly_when_its_last_chunk_is_recorded(
    job_store: JobStore, order: list[int]
) -> None:
    store_job(job_store)
    assert record_all(job_store, order) == [False, False, True]
    meta = job_store.meta(JOB)
    assert meta is not None
    assert meta.state is JobState.COMPLETED
    assert meta.finished_at is not None
    assert (meta.processed, meta.created, meta.updated, meta.failed) == (6, 3, 2, 1)
    assert job_store.record_chunk(JOB, order[-1], RESULTS[order[-1]]) is False
    assert job_store.meta(JOB) == meta


def test_job_is_not_completed_before_its_last_chunk(job_store: JobStore) -> None:
    store_job(job_store)
    record_all(job_store, [0, 2])
    job_store.record_chunk(JOB, 2, RESULTS[2])
    meta = job_store.meta(JOB)
    assert meta is not None
    assert meta.state is JobState.QUEUED
    assert meta.finished_at is None


def test_iter_outcomes_returns_input_order_including_moved_rows(job_store: JobStore) -> None:
    meta = store_job(job_store)
    record_all(job_store, [2, 0, 1])
    items = list(job_store.iter_outcomes(meta))
    assert [item[0] for item in items] == [0, 1, 2, 3, 4, 5]
    assert [item[1] for item in items] == [
        RowStatus.CREATED,
        RowStatus.CREATED,
        RowStatus.CREATED,
        RowStatus.UPDATED,
        RowStatus.INVALID,
        RowStatus.UPDATED,
    ]


@pytest.mark.parametrize(
    ("start", "stop", "indexes"),
    [(0, 2, [0, 1]), (1, 4, [1, 2, 3]), (3, 5, [3, 4]), (5, None, [5]), (4, 99, [4, 5]),
     (6, None, []), (3, 3, [])],
)  # fmt: skip
def test_iter_outcomes_pages_from_the_middle(
    job_store: JobStore, start: int, stop: int | None, indexes: list[int]
) -> None:
    meta = store_job(job_store)
    record_all(job_store, [0, 1, 2])
    assert [item[0] for item in job_store.iter_outcomes(meta, start, stop)] == indexes


def test_iter_outcomes_reports_a_row_without_result_as_500(job_store: JobStore) -> None:
    meta = store_job(job_store)
    record_all(job_store, [0, 2])
    outcomes = list(job_store.iter_outcomes(meta))
    assert [item[0] for item in outcomes] == [0, 1, 2, 3, 4, 5]
    assert outcomes[2] == (2, 500, MISSING_RESULT, None)


def test_discard_removes_every_key_of_the_job(
    job_store: JobStore, fake_redis: fakeredis.FakeRedis
) -> None:
    store_job(job_store, "other")
    job_store.begin(JOB, entity="claim-prompt-pays", database="demo", user="a", chunk_size=2)
    job_store.write_rows(JOB, {c: encoded(items) for c, items in LAYOUT.items()}, MOVED)
    job_store.discard(JOB, LAYOUT)
    assert job_store.meta(JOB) is None
    assert not [k for k in fake_redis.keys("*") if b":job:job-1" in k]
    assert job_store.meta("other") is not None


def test_every_key_carries_the_ttl(job_store: JobStore, fake_redis: fakeredis.FakeRedis) -> None:
    store_job(job_store)
    record_all(job_store, [0, 1])
    keys = job_store.keys(JOB)
    job_keys = (
        keys.meta, keys.moved, keys.rows(2), keys.results(0), keys.results(1), keys.done,
        keys.chunks, job_store.store_keys.jobs_of("demo"),
        job_store.store_keys.jobs_in_state("demo", "queued"),
    )  # fmt: skip
    for key in job_keys:
        assert 0 < fake_redis.ttl(key) <= TTL_S, key
    # Only the index of unfinished jobs (finished jobs leave it) and the deployment's
    # counters (a few dozen fields) have no TTL.
    no_ttl = ("t:active", job_store.store_keys.stats)
    assert set(fake_redis.keys("*")) == {k.encode() for k in (*job_keys, *no_ttl)}


def test_a_late_recorder_of_an_earlier_round_counts_nothing(job_store: JobStore) -> None:
    store_job(job_store)
    job_store.redis.hset(job_store.keys(JOB).meta, "round", 1)  # a retry round began
    assert job_store.record_chunk(JOB, 0, RESULTS[0], job_round=0) is False
    meta = job_store.meta(JOB)
    assert meta is not None
    assert meta.processed == 0
    assert job_store.chunk_states(JOB).unfinished == {0, 1, 2}
