"""The batch route and the job routes, in-process: contract, errors, ordering, paging."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from sqlalchemy import create_engine, text

from producer.tokens import mint_token
from tests.factories import JWT_SECRET, NARROW_KEY, make_row, make_rows
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"


def submit(api: Api, rows: Any, headers: dict[str, str]) -> Any:
    return api.client.put(BATCH, content=json.dumps(rows), headers=headers)


def assert_problem(response: Any, status: int, detail_has: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None
    error = body["error"]
    assert error["status"] == status
    assert error["type"].startswith("urn:claimpay:problem:")
    assert error["title"]
    assert error["instance"] == response.request.url.path
    assert detail_has in error["detail"]
    assert body["debug"]["activityID"]
    return dict(error)


def test_submit_answers_202_with_job_and_location(api: Api, auth_headers: Headers) -> None:
    response = submit(api, make_rows(3), auth_headers())
    assert response.status_code == 202
    body = response.json()
    job_id = body["data"]["jobId"]
    assert len(job_id) == 32
    assert response.headers["location"] == f"/jobs/{job_id}"
    assert body["data"] == {
        "jobId": job_id,
        "state": "queued",
        "total": 3,
        "statusUrl": f"/jobs/{job_id}",
        "resultsUrl": f"/jobs/{job_id}/results",
    }
    assert body["error"] is None
    assert body["debug"] == {"activityID": job_id}
    assert api.enqueuer.queued == [(job_id, 0)]


def test_results_are_207_in_input_order_after_completion(api: Api, auth_headers: Headers) -> None:
    rows = [make_row(5), {"claimPromptPay_Key": "x"}, make_row(6), make_row(5, tax_ID="99")]
    job_id = submit(api, rows, auth_headers()).json()["data"]["jobId"]
    pending = api.client.get(f"/jobs/{job_id}/results", headers=auth_headers())
    assert pending.status_code == 202
    assert pending.json()["data"]["state"] == "queued"
    api.run_queued()
    status = api.client.get(f"/jobs/{job_id}", headers=auth_headers()).json()["data"]
    assert status["state"] == "completed"
    assert (status["processed"], status["created"], status["updated"], status["failed"]) == (
        4,
        2,
        1,
        1,
    )
    assert status["database"] == "demo"
    assert status["finishedAt"]
    assert status["submittedAt"]
    results = api.client.get(f"/jobs/{job_id}/results", headers=auth_headers())
    assert results.status_code == 207
    body = results.json()
    assert [item["status"] for item in body["data"]] == [201, 400, 201, 200]
    assert [item["id"] for item in body["data"]] == [
        [{"key": "claimPromptPay_Key", "value": 5}],
        [{"key": "claimPromptPay_Key", "value": None}],
        [{"key": "claimPromptPay_Key", "value": 6}],
        [{"key": "claimPromptPay_Key", "value": 5}],
    ]
    assert body["data"][0]["body"] == "Created"
    assert body["data"][3]["body"] == "Updated"
    assert "claimPromptPay_Key" in body["data"][1]["body"]
    assert body["error"] is None
    assert body["debug"] == {"activityID": job_id}


def test_duplicates_far_apart_across_chunks_keep_last_write(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(chunk_size=10)
    rows = make_rows(100, first_key=1000)
    rows[95] = make_row(1003, tax_ID="LAST")
    rows[50] = make_row(1003, tax_ID="MIDDLE")
    job_id = submit(api, rows, auth_headers()).json()["data"]["jobId"]
    api.run_queued(reverse=True)
    data = api.client.get(f"/jobs/{job_id}/results", headers=auth_headers()).json()["data"]
    assert len(data) == 100
    assert [item["id"][0]["value"] for item in data] == [row["claimPromptPay_Key"] for row in rows]
    assert (data[3]["status"], data[50]["status"], data[95]["status"]) == (201, 200, 200)
    engine = create_engine(api.settings.databases["demo"])
    with engine.connect() as conn:
        tax_id = conn.execute(
            text("SELECT tax_id FROM claim_prompt_pay WHERE claim_prompt_pay_key = 1003")
        ).scalar_one()
    engine.dispose()
    assert tax_id == "LAST"


def test_results_page_with_pagination_header(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(chunk_size=4)
    job_id = submit(api, make_rows(10), auth_headers()).json()["data"]["jobId"]
    api.run_queued()
    response = api.client.get(
        f"/jobs/{job_id}/results", params={"page": 2, "pageSize": 3}, headers=auth_headers()
    )
    assert response.status_code == 207
    assert json.loads(response.headers["x-pagination"]) == {
        "TotalCount": 10,
        "TotalPages": 4,
        "CurrentPage": 2,
        "PageSize": 3,
    }
    assert [item["id"][0]["value"] for item in response.json()["data"]] == [4, 5, 6]
    last = api.client.get(
        f"/jobs/{job_id}/results", params={"page": 4, "pageSize": 3}, headers=auth_headers()
    )
    assert [item["id"][0]["value"] for item in last.json()["data"]] == [10]
    beyond = api.client.get(
        f"/jobs/{job_id}/results", params={"page": 9, "pageSize": 3}, headers=auth_headers()
    )
    assert beyond.status_code == 207
    assert beyond.json()["data"] == []


def test_bad_paging_is_a_400_problem(api: Api, auth_headers: Headers) -> None:
    job_id = submit(api, make_rows(1), auth_headers()).json()["data"]["jobId"]
    api.run_queued()
    response = api.client.get(f"/jobs/{job_id}/results?page=0", headers=auth_headers())
    assert_problem(response, 400, "page")


def test_empty_array_completes_with_empty_data(api: Api, auth_headers: Headers) -> None:
    response = submit(api, [], auth_headers())
    assert response.status_code == 202
    job_id = response.json()["data"]["jobId"]
    assert api.enqueuer.queued == []
    results = api.client.get(f"/jobs/{job_id}/results", headers=auth_headers())
    assert results.status_code == 207
    assert results.json() == {"data": [], "error": None, "debug": {"activityID": job_id}}


def test_update_user_comes_from_the_token_subject(api: Api, auth_headers: Headers) -> None:
    submit(api, [make_row(7)], auth_headers(user="carol"))
    api.run_queued()
    engine = create_engine(api.settings.databases["demo"])
    with engine.connect() as conn:
        users = conn.execute(
            text(
                "SELECT entry_user, update_user FROM claim_prompt_pay WHERE claim_prompt_pay_key=7"
            )
        ).one()
    engine.dispose()
    assert tuple(users) == ("carol", "carol")


def _alg_none_token() -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"sub": "mallory", "exp": int(time.time()) + 600}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _token(**claims: Any) -> str:
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"x-api-key": None}, 401, "x-api-key"),
        ({"x-api-key": "nope"}, 401, "x-api-key"),
        ({"Authorization": None}, 401, "Bearer"),
        ({"Authorization": "Basic abc"}, 401, "Bearer"),
        ({"Authorization": "Bearer not-a-jwt"}, 401, "not valid"),
        ({"Authorization": f"Bearer {_alg_none_token()}"}, 401, "not valid"),
        ({"Authorization": f"Bearer {mint_token('other-secret' * 4, 'a', 60)}"}, 401, "not valid"),
        ({"Authorization": f"Bearer {mint_token(JWT_SECRET, 'a', -120)}"}, 401, "expired"),
        ({"Authorization": f"Bearer {_token(sub='a')}"}, 401, "not valid"),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode({"sub": "a", "exp": 2**33}, JWT_SECRET, "HS512")
            },
            401,
            "not valid",
        ),
        ({"vbasoftware-database": None}, 400, "vbasoftware-database"),
        ({"vbasoftware-database": "nowhere"}, 400, "vbasoftware-database"),
        ({"x-api-key": NARROW_KEY}, 403, "database"),
    ],
)
def test_request_level_errors_are_problem_envelopes(
    api: Api, auth_headers: Headers, change: dict[str, str | None], status: int, detail: str
) -> None:
    headers = auth_headers()
    for name, value in change.items():
        headers.pop(name, None)
        if value is not None:
            headers[name] = value
    assert_problem(submit(api, make_rows(1), headers), status, detail)
    assert api.enqueuer.queued == []


def test_api_key_is_checked_before_the_database_header(api: Api, auth_headers: Headers) -> None:
    headers = auth_headers(database=None)
    headers["x-api-key"] = "wrong"
    assert_problem(submit(api, make_rows(1), headers), 401)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'[{"claimPromptPay_Key": 1},', "not valid JSON"),
        (b'{"claimPromptPay_Key": 1}', "JSON array"),
        (b"42", "JSON array"),
        (b"", "empty"),
        (b"[1] [2]", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400_and_store_nothing(
    api: Api, auth_headers: Headers, body: bytes, detail: str
) -> None:
    response = api.client.put(BATCH, content=body, headers=auth_headers())
    assert_problem(response, 400, detail)
    assert api.enqueuer.queued == []
    assert api.store.redis.keys("t:job:*") == []


def test_unknown_and_foreign_jobs_are_404(api: Api, auth_headers: Headers) -> None:
    job_id = submit(api, make_rows(1), auth_headers()).json()["data"]["jobId"]
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results"):
        assert_problem(api.client.get(path, headers=auth_headers(key=NARROW_KEY)), 404)
        wrong_db = auth_headers(database="acme")
        assert_problem(api.client.get(path, headers=wrong_db), 404)
    assert_problem(api.client.get("/jobs/" + "0" * 32, headers=auth_headers()), 404)
    assert_problem(api.client.get("/jobs/not-an-id", headers=auth_headers()), 404)


def test_job_routes_need_authentication(api: Api, auth_headers: Headers) -> None:
    job_id = submit(api, make_rows(1), auth_headers()).json()["data"]["jobId"]
    assert_problem(api.client.get(f"/jobs/{job_id}"), 401)
    status = api.client.get(f"/jobs/{job_id}", headers=auth_headers(database=None))
    assert status.status_code == 200


def test_unknown_route_is_a_problem_envelope(api: Api) -> None:
    assert_problem(api.client.get("/nowhere"), 404)
