"""Validate-only: `?dryRun=true` reports per row what a real run would do ("Would
create", "Would update", 4xx) and writes nothing to the database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import make_row, make_rows
from tests.integration.batches import (
    Headers,
    keys_of,
    ledger_entries,
    put_batch,
    results,
    statuses,
    table_rows,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_300_001


def run_synchronously(
    client: TestClient, rows: list[Any], headers: dict[str, str], **params: str | int
) -> tuple[str, dict[str, Any]]:
    """Submit with `Prefer: wait=10`; the job ID and the 207 body."""
    response = put_batch(client, rows, {**headers, "Prefer": "wait=10"}, params)
    assert response.status_code == 207, response.text
    body: dict[str, Any] = response.json()
    return response.headers["Location"].removeprefix("/jobs/"), body


def test_dry_run_reports_what_would_happen_and_writes_nothing(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme", user="rehearsal")
    run_synchronously(client, make_rows(3, first_key=FIRST), headers)
    table_before = table_rows(pg_engine, FIRST, FIRST + 9)
    assert set(table_before) == {FIRST, FIRST + 1, FIRST + 2}

    rows = [
        make_row(FIRST, plan_ID="DRY"),
        make_row(FIRST + 5),
        make_row(FIRST + 6, prompt_Pay_Duration_Type="W"),
        make_row(FIRST + 1, tax_ID="999999999"),
        {"claimPromptPay_Key": FIRST + 7, "surprise": 1},
        make_row(FIRST + 5, plan_ID="AGAIN"),
        make_row(FIRST + 8),
    ]
    job_id, body = run_synchronously(client, rows, headers, dryRun="true", chunkSize=3)

    data = body["data"]
    assert keys_of(data) == [row["claimPromptPay_Key"] for row in rows]
    assert statuses(data) == [200, 201, 400, 200, 400, 200, 201]
    bodies = [item["body"] for item in data]
    assert bodies[:2] == ["Would update", "Would create"]
    assert bodies[3] == "Would update"
    assert bodies[5:] == ["Would update", "Would create"]
    assert "prompt_Pay_Duration_Type" in bodies[2]
    assert "surprise" in bodies[4]
    assert results(client, job_id, headers) == data

    status = client.get(f"/jobs/{job_id}", headers=headers).json()["data"]
    assert status["dryRun"] is True
    assert (status["state"], status["total"], status["processed"]) == ("completed", 7, 7)
    assert table_rows(pg_engine, FIRST, FIRST + 9) == table_before
    assert ledger_entries(pg_engine, job_id) == 0


def test_a_real_run_after_a_dry_run_does_what_the_dry_run_said(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    run_synchronously(client, [make_row(FIRST + 100)], headers)
    rows = [make_row(FIRST + 100, plan_ID="HMO"), make_row(FIRST + 101), make_row(FIRST + 101)]

    _, rehearsal = run_synchronously(client, rows, headers, dryRun="true")
    _, real = run_synchronously(client, rows, headers)

    assert statuses(rehearsal["data"]) == statuses(real["data"]) == [200, 201, 200]
    assert [item["body"] for item in real["data"]] == ["Updated", "Created", "Updated"]
    assert table_rows(pg_engine, FIRST + 100, FIRST + 101)[FIRST + 100]["plan_id"] == "HMO"
