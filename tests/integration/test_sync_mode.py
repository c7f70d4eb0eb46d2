"""Drop-in synchronous mode: `Prefer: wait=N` (RFC 7240) answers 207 with every row's
result when the job finishes within N seconds, else the usual 202; `Preference-Applied`
tells that the wait was honoured (and how long, when the server capped it)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from producer.main import create_app
from tests.factories import make_row, make_rows
from tests.integration.batches import (
    Headers,
    accepted_job,
    keys_of,
    paused,
    put_batch,
    results,
    statuses,
    table_rows,
)
from tests.integration.conftest import WorkerProcess, stack_settings, wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_000_001


def test_prefer_wait_answers_207_with_every_row_when_the_job_finishes_in_time(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    rows = make_rows(20, first_key=FIRST)
    rows[7] = make_row(FIRST + 7, prompt_Pay_Duration_Type="W")
    headers = auth_headers(database="acme", user="sync")
    response = put_batch(client, rows, {**headers, "Prefer": "wait=10"}, {"chunkSize": 6})

    assert response.status_code == 207, response.text
    assert response.headers["Preference-Applied"] == "wait=10"
    job_id = response.headers["Location"].removeprefix("/jobs/")
    body = response.json()
    assert (body["error"], body["debug"]) == (None, {"activityID": job_id})
    data = body["data"]
    assert keys_of(data) == [row["claimPromptPay_Key"] for row in rows]
    assert statuses(data) == [201] * 7 + [400] + [201] * 12
    assert "prompt_Pay_Duration_Type" in data[7]["body"]
    assert data == results(client, job_id, headers)

    table = table_rows(pg_engine, FIRST, FIRST + 19)
    assert set(table) == {row["claimPromptPay_Key"] for i, row in enumerate(rows) if i != 7}
    assert table[FIRST]["tax_id"] == rows[0]["tax_ID"]
    assert table[FIRST + 19]["plan_id"] == rows[19]["plan_ID"]
    assert table[FIRST]["entry_user"] == "sync"


def test_prefer_wait_answers_202_when_the_job_cannot_finish_in_time(
    client: TestClient, worker_process: WorkerProcess, pg_engine: Engine, auth_headers: Headers
) -> None:
    first = FIRST + 100
    rows = make_rows(5, first_key=first)
    headers = auth_headers(database="acme")
    with paused(worker_process):
        started = time.monotonic()
        response = put_batch(client, rows, {**headers, "Prefer": "wait=1"})
        waited_s = time.monotonic() - started
        job_id = accepted_job(response)
        assert response.headers["Preference-Applied"] == "wait=1"
        assert waited_s >= 1.0
        assert response.json()["data"]["state"] == "queued"
        assert client.get(f"/jobs/{job_id}/results", headers=headers).status_code == 202
        assert table_rows(pg_engine, first, first + 4) == {}

    status = wait_for_job(client, job_id, headers, timeout_s=60)
    assert (status["total"], status["created"], status["failed"]) == (5, 5, 0)
    assert statuses(results(client, job_id, headers)) == [201] * 5
    assert set(table_rows(pg_engine, first, first + 4)) == set(range(first, first + 5))


def test_a_wait_longer_than_the_servers_maximum_is_capped_and_reported(
    stack_env: dict[str, str], worker_process: WorkerProcess, auth_headers: Headers
) -> None:
    settings = stack_settings({**stack_env, "CLAIMPAY_MAX_WAIT_S": "1"})
    headers = auth_headers(database="acme")
    with TestClient(create_app(settings), raise_server_exceptions=False) as capped:
        with paused(worker_process):
            started = time.monotonic()
            prefer = {"Prefer": "respond-async, wait=600"}
            response = put_batch(capped, make_rows(3, first_key=FIRST + 200), {**headers, **prefer})
            waited_s = time.monotonic() - started
            capped_job = accepted_job(response)
            assert response.headers["Preference-Applied"] == "wait=1"
            assert 1.0 <= waited_s < 30

            plain = put_batch(capped, make_rows(3, first_key=FIRST + 300), headers)
            plain_job = accepted_job(plain)
            assert "Preference-Applied" not in plain.headers

        for job_id in (capped_job, plain_job):
            assert wait_for_job(capped, job_id, headers, timeout_s=60)["created"] == 3


def test_retrying_an_unfinished_job_is_refused(
    client: TestClient, worker_process: WorkerProcess, auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    with paused(worker_process):
        job_id = accepted_job(put_batch(client, make_rows(2, first_key=FIRST + 400), headers))
        refused = client.post(f"/jobs/{job_id}/retry", headers=headers)
        assert refused.status_code == 409
        assert refused.json()["error"]["status"] == 409
    assert wait_for_job(client, job_id, headers, timeout_s=60)["created"] == 2
