"""The whole pipeline on real servers: HTTP in, Redis, a Celery worker process, SQL out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.factories import NARROW_KEY, make_row, make_rows
from tests.integration.conftest import wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"


def run_batch(
    client: TestClient, rows: list[Any], headers: dict[str, str]
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Submit, wait for completion, read the whole 207 envelope."""
    accepted = client.put(BATCH, content=json.dumps(rows), headers=headers)
    assert accepted.status_code == 202, accepted.text
    job_id: str = accepted.json()["data"]["jobId"]
    status = wait_for_job(client, job_id, headers)
    results = client.get(f"/jobs/{job_id}/results", headers=headers)
    assert results.status_code == 207
    body = results.json()
    assert body["error"] is None
    assert body["debug"] == {"activityID": job_id}
    assert len(body["data"]) == len(rows)
    return job_id, status, body["data"]


def stored(engine: Engine, keys: list[int]) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM claim_prompt_pay WHERE claim_prompt_pay_key = ANY(:keys)"),
            {"keys": keys},
        ).mappings()
        return {row["claim_prompt_pay_key"]: dict(row) for row in rows}


def test_batch_is_applied_to_postgres_and_reported_per_row(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    rows = [make_row(10_001), make_row(10_002, prompt_Pay_Duration=45, entry_User="loader")]
    _, status, data = run_batch(client, rows, auth_headers(database="acme", user="ops"))
    assert (status["created"], status["updated"], status["failed"]) == (2, 0, 0)
    assert [item["status"] for item in data] == [201, 201]
    assert [item["body"] for item in data] == ["Created", "Created"]
    table = stored(pg_engine, [10_001, 10_002])
    assert table[10_002]["prompt_pay_duration"] == 45
    assert table[10_002]["entry_user"] == "loader"
    assert table[10_001]["entry_user"] == "ops"
    assert table[10_001]["tax_id"] == rows[0]["tax_ID"]
    assert table[10_001]["group_id"] == rows[0]["group_ID"]

    update = [make_row(10_001, plan_ID="HMO", update_User="fixer")]
    _, _, data = run_batch(client, update, auth_headers(database="acme", user="ops2"))
    assert data == [
        {"id": [{"key": "claimPromptPay_Key", "value": 10_001}], "status": 200, "body": "Updated"}
    ]
    after = stored(pg_engine, [10_001])[10_001]
    assert after["plan_id"] == "HMO"
    assert after["update_user"] == "fixer"
    assert after["entry_user"] == "ops"
    assert after["entry_date"] == table[10_001]["entry_date"]
    assert after["update_date"] > table[10_001]["update_date"]


def test_mixed_valid_and_invalid_rows(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    rows: list[Any] = [
        make_row(20_001),
        make_row(20_002, prompt_Pay_Duration_Type="W"),
        {"group_ID": "G"},
        make_row(20_003, tax_ID="9" * 33),
        make_row(20_004, update_Date="not a date"),
        make_row(20_005, surprise=1),
        "not an object",
        make_row(20_006),
    ]
    _, status, data = run_batch(client, rows, auth_headers(database="acme"))
    assert [item["status"] for item in data] == [201, 400, 400, 400, 400, 400, 400, 201]
    assert "prompt_Pay_Duration_Type" in data[1]["body"]
    assert "claimPromptPay_Key" in data[2]["body"]
    assert data[2]["id"] == [{"key": "claimPromptPay_Key", "value": None}]
    assert "tax_ID" in data[3]["body"]
    assert "update_Date" in data[4]["body"]
    assert "surprise" in data[5]["body"]
    assert (status["created"], status["failed"]) == (2, 6)
    assert set(stored(pg_engine, list(range(20_001, 20_007)))) == {20_001, 20_006}


def test_duplicates_far_apart_in_a_multi_chunk_batch(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    rows = make_rows(3_000, first_key=30_000)
    rows[1_250] = make_row(30_007, tax_ID="SECOND")
    rows[2_999] = make_row(30_007, tax_ID="THIRD")
    _, _, data = run_batch(client, rows, auth_headers(database="acme"))
    assert [data[i]["status"] for i in (7, 1_250, 2_999)] == [201, 200, 200]
    assert [item["id"][0]["value"] for item in data] == [r["claimPromptPay_Key"] for r in rows]
    assert stored(pg_engine, [30_007])[30_007]["tax_id"] == "THIRD"


def test_ten_thousand_rows_half_existing(
    client: TestClient, pg_engine: Engine, auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    run_batch(client, make_rows(5_000, first_key=100_000, seed=1), headers)
    rows = make_rows(10_000, first_key=102_500, seed=2)
    _, status, data = run_batch(client, rows, headers)
    assert (status["total"], status["processed"]) == (10_000, 10_000)
    assert (status["created"], status["updated"], status["failed"]) == (7_500, 2_500, 0)
    assert [item["status"] for item in data] == [200] * 2_500 + [201] * 7_500
    assert [item["id"][0]["value"] for item in data] == list(range(102_500, 112_500))
    with pg_engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM claim_prompt_pay "
                "WHERE claim_prompt_pay_key BETWEEN 100000 AND 112499"
            )
        ).scalar_one()
    assert count == 12_500
    sample = stored(pg_engine, [104_000, 111_111])
    assert sample[104_000]["tax_id"] == rows[1_500]["tax_ID"]
    assert sample[111_111]["plan_id"] == rows[8_611]["plan_ID"]


def test_paged_results_on_the_real_stack(client: TestClient, auth_headers: Headers) -> None:
    headers = auth_headers(database="acme")
    job_id, _, data = run_batch(client, make_rows(1_200, first_key=40_000), headers)
    page = client.get(f"/jobs/{job_id}/results?page=3&pageSize=500", headers=headers)
    assert page.status_code == 207
    assert json.loads(page.headers["x-pagination"]) == {
        "TotalCount": 1_200,
        "TotalPages": 3,
        "CurrentPage": 3,
        "PageSize": 500,
    }
    assert page.json()["data"] == data[1_000:]


def test_sqlite_database_through_the_real_worker(client: TestClient, auth_headers: Headers) -> None:
    rows = [make_row(1), make_row(2), make_row(1, tax_ID="123")]
    _, _, data = run_batch(client, rows, auth_headers(database="demo"))
    assert [item["status"] for item in data] == [201, 201, 200]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"x-api-key": "wrong"}, 401),
        ({"Authorization": "Bearer x.y.z"}, 401),
        ({"vbasoftware-database": None}, 400),
        ({"vbasoftware-database": "ghost"}, 400),
        ({"x-api-key": NARROW_KEY}, 403),
    ],
)
def test_request_errors_on_the_real_stack(
    client: TestClient, auth_headers: Headers, change: dict[str, str | None], status: int
) -> None:
    headers = auth_headers(database="acme")
    for name, value in change.items():
        headers.pop(name)
        if value is not None:
            headers[name] = value
    response = client.put(BATCH, content=json.dumps(make_rows(2)), headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["status"] == status


def test_malformed_json_on_the_real_stack(client: TestClient, auth_headers: Headers) -> None:
    response = client.put(BATCH, content=b"[{", headers=auth_headers(database="acme"))
    assert response.status_code == 400
    response = client.put(BATCH, content=b'{"a": 1}', headers=auth_headers(database="acme"))
    assert response.status_code == 400


def test_jobs_are_hidden_from_keys_without_their_database(
    client: TestClient, auth_headers: Headers
) -> None:
    job_id, _, _ = run_batch(client, make_rows(1, first_key=50_000), auth_headers(database="acme"))
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results"):
        response = client.get(path, headers=auth_headers(database=None, key=NARROW_KEY))
        assert response.status_code == 404
