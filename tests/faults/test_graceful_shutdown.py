"""Fault 6: SIGTERM to a worker mid-job (Celery's warm shutdown), then a new worker."""

from __future__ import annotations

import signal
import time

import pytest

from tests.factories import make_rows
from tests.faults.checks import (
    assert_one_result_per_row,
    expected_digest,
    key_of,
    status_counts,
    table_count,
    table_digest,
)
from tests.faults.conftest import MakeStack, Report

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROWS = 50_000


def test_warm_shutdown_mid_job_loses_and_doubles_nothing(
    make_stack: MakeStack, report: Report
) -> None:
    stack = make_stack()
    rows = make_rows(ROWS, first_key=1, seed=31)
    worker = stack.start_worker(concurrency=2)
    job_id = stack.submit(rows)
    stack.wait_for_done(job_id, 5, 60)

    stack.signal_worker(worker, signal.SIGTERM, group=False)  # as `docker stop` does
    stopping = time.monotonic()
    # Within compose's stop_grace_period (60 s). A pool process that sent a result its
    # parent did not count before the pool was joined waits up to 30 s for it (billiard's
    # _ensure_messages_consumed), which happens in a few percent of runs.
    assert stack.wait_exit(worker, 50) == 0, stack.log_tail()
    stopped_s = time.monotonic() - stopping
    meta = stack.store.meta(job_id)
    assert meta is not None
    assert not meta.state.terminal, "the job finished before the worker stopped"
    done_at_stop = len(stack.chunk_set(job_id, "done"))
    left_claimed = stack.chunk_set(job_id, "started") - stack.chunk_set(job_id, "done")
    assert left_claimed == set(), f"the warm shutdown abandoned claimed chunks {left_claimed}"

    stack.start_worker(concurrency=2)
    status = stack.wait_for_state(job_id, {"completed"}, 60)
    finished_s = time.monotonic() - stopping

    items = stack.results(job_id)
    assert_one_result_per_row(items, rows)
    assert status_counts(items) == {201: ROWS}
    assert (status["processed"], status["created"], status["failed"]) == (ROWS, ROWS, 0)
    assert table_digest(stack.engine, map(key_of, rows)) == expected_digest(rows)
    assert table_count(stack.engine) == ROWS
    claimed_twice = sum(1 for n in stack.deliveries(job_id).values() if n > 1)

    report(
        f"{ROWS:,} rows; SIGTERM after {done_at_stop} of {ROWS // 500} chunks, worker exited "
        f"in {stopped_s:.1f}s leaving no chunk claimed; {claimed_twice} chunk(s) claimed twice; "
        f"completed {finished_s:.1f}s after the SIGTERM"
    )
