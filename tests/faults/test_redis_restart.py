"""Fault 3: the Redis server (broker and job store, AOF on) restarted mid-job.

The worker process itself must survive: Celery 5.7 used to exit now and then with
"Unrecoverable error: AttributeError(... 'hostname')" (`WORKER_CRASH`) when the broker
connection dropped, fixed by `worker.broker.Consumer`. That crash is a race (about one
restart in ten to twenty) which `test_stale_broker_channel.py` reproduces deterministically;
here a crash still gets a new worker (as `restart: unless-stopped` would), so the job's
checks run, and then fails the test.
"""

from __future__ import annotations

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
from tests.faults.redis_server import RedisServer
from tests.faults.stack import FaultStack, WaitTimeout

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROWS = 60_000
DOWN_S = 1.5
CHUNKS_BEFORE_STOP = 5
WORKER_CRASH = "Unrecoverable error"


def complete_with_restart_policy(stack: FaultStack, job_id: str, timeout_s: float) -> int:
    """Wait for the job to complete, starting a new worker whenever the current one exits
    (as `restart: unless-stopped` does); returns how many workers crashed."""
    crashes = 0
    deadline = time.monotonic() + timeout_s
    while True:
        status = stack.status(job_id)
        if status is not None and status["state"] == "completed":
            return crashes
        worker = stack.workers[-1]
        if worker.process.poll() is not None:
            assert WORKER_CRASH in worker.log(), f"the worker exited:\n{stack.log_tail()}"
            crashes += 1
            stack.start_worker(concurrency=2)
        if time.monotonic() > deadline:
            raise WaitTimeout(f"job {job_id} not completed in {timeout_s}s\n{stack.log_tail()}")
        time.sleep(0.1)


def test_job_completes_across_a_redis_restart(
    redis_server: RedisServer, make_stack: MakeStack, report: Report
) -> None:
    stack = make_stack(redis_url=redis_server.url)
    rows = make_rows(ROWS, first_key=1, seed=51)
    stack.start_worker(concurrency=2)
    job_id = stack.submit(rows)
    stack.wait_for_done(job_id, CHUNKS_BEFORE_STOP, 60)

    done_at_stop = len(stack.chunk_set(job_id, "done"))
    stopping = time.monotonic()
    redis_server.stop()  # SIGTERM: Redis writes its AOF and exits
    time.sleep(DOWN_S)
    redis_server.start()
    down_s = time.monotonic() - stopping
    meta = stack.store.meta(job_id)
    assert meta is not None, "the job did not survive the restart (AOF)"
    assert not meta.state.terminal, "the job completed before Redis went down"

    crashes = complete_with_restart_policy(stack, job_id, 90)
    recovered_s = time.monotonic() - stopping
    status = stack.status(job_id)
    assert status is not None
    items = stack.results(job_id)
    assert_one_result_per_row(items, rows)
    assert status_counts(items) == {201: ROWS}
    assert (status["processed"], status["created"], status["failed"]) == (ROWS, ROWS, 0)
    assert table_digest(stack.engine, map(key_of, rows)) == expected_digest(rows)
    assert table_count(stack.engine) == ROWS

    crashed = f"; the worker CRASHED {crashes}x and was restarted" if crashes else ""
    assert crashes == 0, f"the worker crashed on the Redis restart\n{stack.log_tail()}"
    report(
        f"{ROWS:,} rows; Redis stopped after {done_at_stop} of {ROWS // 500} chunks, down "
        f"{down_s:.1f}s; completed {recovered_s:.1f}s after the stop{crashed}"
    )
