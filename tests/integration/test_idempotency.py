"""`Idempotency-Key`: the same key and body return the original job (202, or 207 with
`Prefer: wait`), and another body with the key is refused (422). Requests still being
received when a duplicate arrives: `test_idempotency_in_flight.py`."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from producer.main import create_app
from tests.factories import make_rows
from tests.integration.batches import (
    BATCH,
    Headers,
    accepted_job,
    jobs_created,
    ledger_entries,
    paused,
    put_batch,
    statuses,
    table_rows,
    unlimited_key,
    with_api_key,
)
from tests.integration.conftest import WorkerProcess, stack_settings, wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_100_001
IDEM_KEY = "test-key-idempotency"
LIMITED_KEY = "test-key-idempotency-limit"


def idempotent(headers: dict[str, str], name: str) -> dict[str, str]:
    """`headers` with a fresh `Idempotency-Key`, unique to this run."""
    return {**headers, "Idempotency-Key": f"{name}-{uuid.uuid4()}"}


@pytest.fixture
def caller(auth_headers: Headers) -> Headers:
    """Headers of a call with this module's API key: `caller(database="acme")`."""
    return functools.partial(auth_headers, key=IDEM_KEY)


@pytest.fixture(scope="module")
def keyed(stack_env: dict[str, str], worker_process: WorkerProcess) -> Iterator[TestClient]:
    """The API in-process, with this module's own API key (see `unlimited_key`)."""
    settings = stack_settings(unlimited_key(stack_env, IDEM_KEY))
    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        yield api


def test_same_key_and_body_return_the_original_job_and_apply_the_rows_once(
    keyed: TestClient, stack_env: dict[str, str], pg_engine: Engine, caller: Headers
) -> None:
    rows = make_rows(30, first_key=FIRST)
    headers = idempotent(caller(database="acme"), "replay")
    before = jobs_created(stack_env, "acme")

    job_id = accepted_job(put_batch(keyed, rows, headers))
    assert accepted_job(put_batch(keyed, rows, headers)) == job_id
    wait_for_job(keyed, job_id, headers)
    replayed = put_batch(keyed, rows, {**headers, "Prefer": "wait=10"})

    assert replayed.status_code == 207, replayed.text
    assert replayed.json()["debug"] == {"activityID": job_id}
    assert statuses(replayed.json()["data"]) == [201] * 30
    assert jobs_created(stack_env, "acme") == before + 1
    assert ledger_entries(pg_engine, job_id) == 1
    assert len(table_rows(pg_engine, FIRST, FIRST + 29)) == 30


def test_same_key_with_another_body_is_refused_with_422(
    keyed: TestClient, stack_env: dict[str, str], pg_engine: Engine, caller: Headers
) -> None:
    first, other = FIRST + 100, FIRST + 200
    rows = make_rows(3, first_key=first)
    headers = idempotent(caller(database="acme"), "mismatch")
    job_id = accepted_job(put_batch(keyed, rows, headers))
    before = jobs_created(stack_env, "acme")

    refused = put_batch(keyed, make_rows(3, first_key=other), headers)

    assert refused.status_code == 422, refused.text
    assert refused.json()["data"] is None
    assert refused.json()["error"]["status"] == 422
    assert refused.headers["Location"] == f"/jobs/{job_id}"
    assert jobs_created(stack_env, "acme") == before
    assert wait_for_job(keyed, job_id, headers)["created"] == 3
    assert table_rows(pg_engine, other, other + 2) == {}
    assert accepted_job(put_batch(keyed, rows, headers)) == job_id


def test_the_key_is_scoped_to_the_database(keyed: TestClient, caller: Headers) -> None:
    rows = make_rows(2, first_key=FIRST + 300)
    key = {"Idempotency-Key": f"scoped-{uuid.uuid4()}"}
    on_acme = accepted_job(put_batch(keyed, rows, {**caller(database="acme"), **key}))
    on_demo = accepted_job(put_batch(keyed, rows, {**caller(database="demo"), **key}))
    assert on_acme != on_demo
    for job_id, database in ((on_acme, "acme"), (on_demo, "demo")):
        assert wait_for_job(keyed, job_id, caller(database=database))["created"] == 2


def test_a_real_run_is_not_answered_with_the_dry_run_of_the_same_key(
    keyed: TestClient, pg_engine: Engine, caller: Headers
) -> None:
    first = FIRST + 400
    rows = make_rows(2, first_key=first)
    headers = {
        **idempotent(caller(database="acme"), "dry-then-real"),
        "Prefer": "wait=10",
    }
    rehearsal = put_batch(keyed, rows, headers, {"dryRun": "true"})
    assert rehearsal.status_code == 207, rehearsal.text

    real = put_batch(keyed, rows, headers)

    answered_with_rehearsal = real.status_code in (202, 207) and (
        real.headers["Location"] == rehearsal.headers["Location"]
    )
    assert not answered_with_rehearsal, real.json()["data"]
    if real.status_code == 207:
        assert set(table_rows(pg_engine, first, first + 1)) == {first, first + 1}


def test_a_key_freed_by_a_refused_request_can_be_used_again(
    keyed: TestClient, caller: Headers
) -> None:
    headers = idempotent(caller(database="acme"), "refused")
    malformed = keyed.put(BATCH, content=b'[{"claimPromptPay_Key": 1', headers=headers)
    assert malformed.status_code == 400
    job_id = accepted_job(put_batch(keyed, make_rows(2, first_key=FIRST + 2_500), headers))
    assert wait_for_job(keyed, job_id, headers)["created"] == 2


def test_a_replay_is_answered_even_when_the_key_is_at_its_job_limit(
    stack_env: dict[str, str], worker_process: WorkerProcess, auth_headers: Headers
) -> None:
    env = {**with_api_key(stack_env, LIMITED_KEY), "CLAIMPAY_MAX_ACTIVE_JOBS_PER_KEY": "1"}
    headers = idempotent(auth_headers(database="acme", key=LIMITED_KEY), "at-limit")
    rows = make_rows(2, first_key=FIRST + 3_500)
    with TestClient(create_app(stack_settings(env)), raise_server_exceptions=False) as limited:
        with paused(worker_process):
            job_id = accepted_job(put_batch(limited, rows, headers))
            replay = put_batch(limited, rows, headers)
        assert wait_for_job(limited, job_id, headers)["created"] == 2
    assert replay.status_code == 202, replay.text
    assert accepted_job(replay) == job_id
