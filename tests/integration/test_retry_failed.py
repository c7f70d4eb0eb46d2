"""Retry only what failed: after a database outage turned rows into 503s,
`POST /jobs/{id}/retry` applies exactly those rows again under the same job ID, keeps
each row's attempt history and leaves the successes alone.

The worker reaches PostgreSQL through a loopback proxy the test cuts. To cut it at a
known point, the test holds a row lock on one key of the second chunk: the first chunk
is applied, the second waits on the lock, and the cut makes it fail for good (the worker
gives up after one retry)."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from producer.main import create_app
from tests.factories import make_row, make_rows
from tests.integration.batches import (
    Headers,
    accepted_job,
    ledger_entries,
    purge_namespace,
    put_batch,
    results,
    statuses,
    table_rows,
)
from tests.integration.conftest import (
    PG_HOST,
    PG_PORT,
    stack_settings,
    start_worker,
    stop_worker,
    wait_for_job,
)
from tests.integration.proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_200_001
LOCKED = FIRST + 9
REJECTED_PLAN = "REJECT"
CONSTRAINT = "it_reject_plan"


@dataclass
class OutageStack:
    """A deployment whose worker reaches `acme` only through `proxy`."""

    api: TestClient
    proxy: TcpProxy


@pytest.fixture
def outage_stack(stack_env: dict[str, str], pg_url: str, tmp_path: Path) -> Iterator[OutageStack]:
    namespace = f"cpit{secrets.token_hex(4)}"
    with TcpProxy(PG_HOST, PG_PORT) as proxy:
        proxied = pg_url.replace(f"@{PG_HOST}:{PG_PORT}/", f"@127.0.0.1:{proxy.port}/")
        assert proxied != pg_url
        env = {
            **stack_env,
            "CLAIMPAY_KEY_PREFIX": namespace,
            "CLAIMPAY_QUEUE": namespace,
            "CLAIMPAY_DATABASES": json.dumps({"acme": proxied}),
            "CLAIMPAY_MAX_RETRIES": "1",
            "CLAIMPAY_RETRY_BACKOFF_S": "0.1",
            "CLAIMPAY_RETRY_BACKOFF_MAX_S": "0.5",
        }
        worker = start_worker(env, tmp_path / "worker.log", concurrency=1)
        try:
            with TestClient(create_app(stack_settings(env)), raise_server_exceptions=False) as api:
                yield OutageStack(api, proxy)
        finally:
            stop_worker(worker)
            purge_namespace(env)


@contextlib.contextmanager
def row_locked(engine: Engine, key: int) -> Iterator[None]:
    """Hold a row lock on `key` (directly, not through the proxy) inside the block."""
    with engine.connect() as conn, conn.begin() as transaction:
        conn.execute(
            text("SELECT 1 FROM claim_prompt_pay WHERE claim_prompt_pay_key = :key FOR UPDATE"),
            {"key": key},
        )
        yield
        transaction.rollback()


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def job_status(api: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = api.get(f"/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def counters(status: dict[str, Any]) -> tuple[int, ...]:
    return tuple(status[name] for name in ("processed", "created", "updated", "failed", "retries"))


def batch_with_one_locked_row() -> list[Any]:
    """Ten rows in two chunks of five; the second holds the locked key and one bad row."""
    return [
        *make_rows(5, first_key=FIRST),
        make_row(FIRST + 5),
        make_row(LOCKED, plan_ID="NEW"),
        make_row(FIRST + 6, prompt_Pay_Duration_Type="W"),
        make_row(FIRST + 7),
        make_row(FIRST + 8),
    ]


def test_rows_that_got_503_in_an_outage_are_applied_by_a_retry_of_the_same_job(
    outage_stack: OutageStack, pg_engine: Engine, auth_headers: Headers
) -> None:
    api, proxy = outage_stack.api, outage_stack.proxy
    headers = auth_headers(database="acme", user="retrier")
    seeded = put_batch(api, [make_row(LOCKED, plan_ID="OLD")], {**headers, "Prefer": "wait=10"})
    assert seeded.status_code == 207
    assert statuses(seeded.json()["data"]) == [201]

    with row_locked(pg_engine, LOCKED):
        job_id = accepted_job(
            put_batch(api, batch_with_one_locked_row(), headers, {"chunkSize": 5})
        )
        wait_until(lambda: job_status(api, job_id, headers)["processed"] == 5, "chunk 0 is in")
        proxy.cut()
        try:
            first_round = wait_for_job(api, job_id, headers, timeout_s=60)
        finally:
            proxy.restore()

    before = results(api, job_id, headers)
    assert statuses(before) == [201] * 5 + [503, 503, 400, 503, 503]
    assert before[5]["body"].startswith("Database unavailable")
    assert counters(first_round) == (10, 5, 0, 5, 0)
    table_before = table_rows(pg_engine, FIRST, LOCKED)
    assert set(table_before) == {*range(FIRST, FIRST + 5), LOCKED}
    assert table_before[LOCKED]["plan_id"] == "OLD"

    retried = api.post(f"/jobs/{job_id}/retry", headers=headers)
    assert retried.status_code == 202, retried.text
    assert retried.headers["Location"] == f"/jobs/{job_id}"
    assert retried.json()["data"]["retriedRows"] == 4
    second_round = wait_for_job(api, job_id, headers, timeout_s=60)

    after = results(api, job_id, headers)
    assert statuses(after) == [201] * 5 + [201, 200, 400, 201, 201]
    assert after[:5] == before[:5]
    assert after[7] == before[7]
    assert all("attempts" not in item for item in [*after[:5], after[7]])
    for index in (5, 6, 8, 9):
        assert after[index]["attempts"] == [{"status": 503, "body": before[index]["body"]}]
    assert counters(second_round) == (10, 8, 1, 1, 1)
    table_after = table_rows(pg_engine, FIRST, LOCKED)
    assert set(table_after) == {*range(FIRST, FIRST + 6), FIRST + 7, FIRST + 8, LOCKED}
    assert table_after[LOCKED]["plan_id"] == "NEW"
    assert all(table_after[key] == table_before[key] for key in range(FIRST, FIRST + 5))
    assert ledger_entries(pg_engine, job_id) == 2

    ndjson = api.get(
        f"/jobs/{job_id}/results", headers={**headers, "Accept": "application/x-ndjson"}
    )
    assert ndjson.status_code == 200
    lines = [orjson.loads(line) for line in ndjson.content.splitlines()]
    assert [line.pop("row") for line in lines] == list(range(1, len(after) + 1))
    assert lines == after

    nothing = api.post(f"/jobs/{job_id}/retry", headers=headers)
    assert nothing.status_code == 200, nothing.text
    assert nothing.json()["data"]["retriedRows"] == 0


def test_a_retry_can_choose_the_statuses_it_runs_again(
    client: TestClient, auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    rows = [make_row(FIRST + 50), make_row(FIRST + 51, prompt_Pay_Duration_Type="W")]
    done = put_batch(client, rows, {**headers, "Prefer": "wait=10"})
    assert statuses(done.json()["data"]) == [201, 400]
    job_id = done.headers["Location"].removeprefix("/jobs/")

    retried = client.post(f"/jobs/{job_id}/retry", headers=headers, params={"statuses": "4xx"})
    assert retried.status_code == 202, retried.text
    assert retried.json()["data"]["retriedRows"] == 1
    status = wait_for_job(client, job_id, headers)

    after = results(client, job_id, headers)
    assert after[0] == done.json()["data"][0]
    assert after[1]["status"] == 400
    assert after[1]["attempts"] == [{"status": 400, "body": done.json()["data"][1]["body"]}]
    assert counters(status) == (2, 1, 0, 1, 1)


@contextlib.contextmanager
def plan_rejected(engine: Engine) -> Iterator[None]:
    """A CHECK constraint a DBA added: rows with plan `REJECT` are refused (422) inside."""
    with engine.begin() as conn:
        conn.execute(
            text(
                f"ALTER TABLE claim_prompt_pay ADD CONSTRAINT {CONSTRAINT} "
                f"CHECK (plan_id <> '{REJECTED_PLAN}')"
            )
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE claim_prompt_pay DROP CONSTRAINT {CONSTRAINT}"))


def test_rows_left_out_of_one_retry_can_be_retried_later(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    rejected = FIRST + 61
    rows = [
        make_row(FIRST + 60),
        make_row(rejected, plan_ID=REJECTED_PLAN),
        make_row(FIRST + 62, prompt_Pay_Duration_Type="W"),
    ]
    with plan_rejected(pg_engine):
        done = put_batch(client, rows, {**headers, "Prefer": "wait=10"})
        assert statuses(done.json()["data"]) == [201, 422, 400]
        job_id = done.headers["Location"].removeprefix("/jobs/")
        first_retry = client.post(
            f"/jobs/{job_id}/retry", headers=headers, params={"statuses": "400"}
        )
        assert first_retry.json()["data"]["retriedRows"] == 1
        wait_for_job(client, job_id, headers)

    after_fix = client.post(f"/jobs/{job_id}/retry", headers=headers, params={"statuses": "422"})
    assert after_fix.status_code == 202, after_fix.text
    assert after_fix.json()["data"]["retriedRows"] == 1
    wait_for_job(client, job_id, headers)
    assert statuses(results(client, job_id, headers)) == [201, 201, 400]
    assert rejected in table_rows(pg_engine, rejected, rejected)
