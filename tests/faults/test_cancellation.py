"""Fault 4: a 100,000-row job cancelled with `DELETE /jobs/{id}` while it runs."""

from __future__ import annotations

import time

import pytest

from claimpay.envelope import NOT_PROCESSED_BODY
from tests.factories import make_rows
from tests.faults.checks import (
    assert_one_result_per_row,
    expected_digest,
    key_of,
    ledger_chunks,
    status_counts,
    stored_keys,
    table_digest,
)
from tests.faults.conftest import MakeStack, Report

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROWS = 100_000
CHUNK_SIZE = 500


def test_cancelled_job_accounts_for_every_row_and_runs_no_chunk_after_the_cancel(
    make_stack: MakeStack, report: Report
) -> None:
    stack = make_stack(CLAIMPAY_CHUNK_SIZE=str(CHUNK_SIZE))
    rows = make_rows(ROWS, first_key=1, seed=21)
    stack.start_worker(concurrency=2)
    job_id = stack.submit(rows)
    stack.wait_for_done(job_id, 1, 60)

    cancel = stack.client.delete(f"/jobs/{job_id}", headers=stack.headers())
    cancelled_at = time.monotonic()
    claimed_before_cancel = stack.chunk_set(job_id, "started") | stack.chunk_set(job_id, "done")
    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["data"]["state"] == "cancelling"

    status = stack.wait_for_state(job_id, {"cancelled"}, 60)
    settled_s = time.monotonic() - cancelled_at
    again = stack.client.delete(f"/jobs/{job_id}", headers=stack.headers())
    assert again.status_code == 200
    assert again.json()["data"]["state"] == "cancelled"

    items = stack.results(job_id)
    assert_one_result_per_row(items, rows)
    applied = [row for row, item in zip(rows, items, strict=True) if item["status"] == 201]
    skipped = [item for item in items if item["status"] == 409]
    assert len(applied) + len(skipped) == ROWS, f"unexpected statuses {status_counts(items)}"
    assert applied, "no row was applied before the cancel"
    assert skipped, "the cancel skipped nothing"
    assert all(item["body"] == NOT_PROCESSED_BODY for item in skipped)
    assert (status["created"], status["notProcessed"], status["failed"]) == (
        len(applied),
        len(skipped),
        0,
    )

    # Applied rows are really in the table with their values; skipped rows really are not.
    assert table_digest(stack.engine, map(key_of, applied)) == expected_digest(applied)
    skipped_keys = [item["id"][0]["value"] for item in skipped]
    assert stored_keys(stack.engine, skipped_keys) == set()

    # A chunk is applied whole or skipped whole, and only chunks claimed before the cancel
    # returned were applied: nothing ran after the cancel was observed.
    ledger = ledger_chunks(stack.engine, job_id)
    applied_chunks = {(key_of(row) - 1) // CHUNK_SIZE for row in applied}
    assert applied_chunks == ledger
    assert ledger <= claimed_before_cancel, (
        f"chunks run after the cancel: {ledger - claimed_before_cancel}"
    )

    report(
        f"{ROWS:,} rows; cancelled after {len(claimed_before_cancel)} of {ROWS // CHUNK_SIZE} "
        f"chunks were claimed; {len(applied):,} rows applied ({len(ledger)} chunks), "
        f"{len(skipped):,} not processed; cancelled state {settled_s:.1f}s after the DELETE"
    )
