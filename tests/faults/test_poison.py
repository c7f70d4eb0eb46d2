"""Fault 5: poison input, a chunk whose processing fails every time.

Two kinds: an unexpected exception inside the apply step (the job names a database that
has no claimpay tables, so the first statement raises `ProgrammingError`), and a chunk whose
worker process dies every time it runs it (as an out-of-memory kill or a segfault would).
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import text

from claimpay.messaging import CeleryEnqueuer, make_celery
from tests.factories import make_row, make_rows
from tests.faults.checks import (
    assert_one_result_per_row,
    expected_digest,
    key_of,
    ledger_chunks,
    seed_table,
    status_counts,
    table_count,
    table_digest,
)
from tests.faults.conftest import MakeStack, Report
from tests.faults.stack import FaultStack

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MAX_DELIVERIES = 2
_LEAKS = re.compile(r"Traceback|File \"|\.py\b|/|line \d+")


def submit_by_hand(stack: FaultStack, database: str, chunks: list[list[dict[str, object]]]) -> str:
    """Store a job chunk by chunk through the job store and queue its chunks, as the
    producer would; returns its ID."""
    store = stack.store
    job_id = uuid.uuid4().hex
    size = max(len(chunk) for chunk in chunks)
    store.begin(
        job_id, entity="claim-prompt-pays", database=database, user="poison", chunk_size=size
    )
    items: dict[int, list[bytes]] = {}
    index = 0
    for chunk_no, rows in enumerate(chunks):
        items[chunk_no] = []
        for row in rows:
            items[chunk_no].append(orjson.dumps([index, row]))
            index += 1
    store.write_rows(job_id, items, {})
    store.seal(job_id, total=index, chunk_nos=list(items))
    settings = stack.settings
    enqueuer = CeleryEnqueuer(make_celery(settings), settings.queue)
    enqueuer.enqueue_chunks(job_id, list(items), [len(rows) for rows in chunks])
    return job_id


def test_unexpected_error_in_a_chunk_gives_500_without_a_trace_and_runs_once(
    make_stack: MakeStack, bare_database: str, report: Report
) -> None:
    stack = make_stack(databases={"bare": bare_database})
    worker = stack.start_worker(concurrency=1)
    chunks: list[list[dict[str, object]]] = [
        [make_row(1), make_row(2, prompt_Pay_Duration_Type="W")],
        [make_row(3)],
    ]
    job_id = submit_by_hand(stack, "bare", chunks)

    status = stack.wait_for_state(job_id, {"completed"}, 30, database="bare")
    items = stack.results(job_id, database="bare")
    assert [item["status"] for item in items] == [500, 400, 500]
    for item in (items[0], items[2]):
        assert "ProgrammingError" in item["body"], item
        assert not _LEAKS.search(item["body"]), f"internals leak to the client: {item['body']}"
    assert "prompt_Pay_Duration_Type" in items[1]["body"]
    assert (status["processed"], status["failed"]) == (3, 3)

    # Never retried: each chunk was claimed once, and stays so while recovery sweeps.
    sweeps = 3 * float(stack.env["CLAIMPAY_SWEEP_INTERVAL_S"])
    time.sleep(sweeps)
    assert stack.deliveries(job_id) == {0: 1, 1: 1}
    assert stack.redis.llen(stack.namespace) == 0, "chunk messages are still queued"
    assert "ProgrammingError" in worker.log(), "the worker did not log the failure"
    report(
        f"unexpected ProgrammingError: rows 500 '{items[0]['body']}', each chunk claimed "
        f"once, still once {sweeps:.0f}s after completion"
    )


@pytest.fixture
def locked_key(make_stack: MakeStack) -> Iterator[FaultStack]:
    """A stack whose row with key 1 is locked by an open transaction of the test, so a
    chunk that updates it blocks until its worker is killed."""
    stack = make_stack(
        CLAIMPAY_MAX_RETRIES="0",
        CLAIMPAY_MAX_DELIVERIES=str(MAX_DELIVERIES),
        CLAIMPAY_LEASE_TTL_S="2",
    )
    seed_table(stack.engine, [make_row(1, tax_ID="SEEDED")])
    with stack.engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(
            text("SELECT 1 FROM claim_prompt_pay WHERE claim_prompt_pay_key = 1 FOR UPDATE")
        )
        try:
            yield stack
        finally:
            transaction.rollback()


def test_chunk_that_kills_its_worker_every_time_is_given_up_after_max_deliveries(
    locked_key: FaultStack, report: Report
) -> None:
    stack = locked_key
    rows = make_rows(1_000, first_key=1, seed=61)  # chunk 0 holds key 1, chunk 1 does not
    worker = stack.start_worker(concurrency=2)
    job_id = stack.submit(rows)

    # Each time a worker process takes chunk 0 to apply it, it dies (SIGKILL) meanwhile.
    # A claim beyond max_deliveries also takes the lease, but only to give the chunk up.
    lease = stack.store.keys(job_id).lease(0)
    killed: list[int] = []

    def crash_holder_or_done() -> bool:
        raw = stack.redis.get(lease)
        holder = raw.decode() if isinstance(raw, bytes) else raw
        applying = stack.deliveries(job_id).get(0, 0) <= MAX_DELIVERIES
        if holder is not None and holder != "retry" and applying:
            pid = int(holder.split(":")[1])
            if pid not in killed and os.getpgid(pid) == worker.process.pid:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        meta = stack.store.meta(job_id)
        return meta is not None and meta.state.terminal

    waited_s = stack.wait_until(crash_holder_or_done, 60, lambda: f"job {job_id} to complete")
    items = stack.results(job_id)
    assert_one_result_per_row(items, rows)
    poisoned, healthy = items[:500], items[500:]
    assert {item["status"] for item in poisoned} == {500}, status_counts(poisoned)
    assert {item["body"] for item in poisoned} == {"Not applied: the chunk failed repeatedly"}
    assert status_counts(healthy) == {201: 500}
    assert len(killed) == MAX_DELIVERIES, (
        f"the chunk's worker process was killed {len(killed)} times"
    )
    assert worker.process.poll() is None, "the worker's main process died"

    sweeps = 3 * float(stack.env["CLAIMPAY_SWEEP_INTERVAL_S"])
    time.sleep(sweeps)
    assert stack.deliveries(job_id)[0] == MAX_DELIVERIES + 1, (
        "the poison chunk was claimed again after give-up"
    )
    assert ledger_chunks(stack.engine, job_id) == {1}
    assert table_digest(stack.engine, map(key_of, rows[500:])) == expected_digest(rows[500:])
    seeded = [make_row(1, tax_ID="SEEDED")]
    assert table_digest(stack.engine, [1]) == expected_digest(seeded), "key 1 was changed"
    assert table_count(stack.engine) == 501
    report(
        f"worker process killed {len(killed)}x by its chunk, then the chunk was given up "
        f"(claim {MAX_DELIVERIES + 1} > max_deliveries): 500 rows 500, 500 rows 201; "
        f"completed in {waited_s:.1f}s"
    )
