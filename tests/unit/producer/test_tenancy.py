"""Tenant isolation: a job is visible only to callers allowed on its database; everyone
else gets the 404 of an unknown job, on every job route, and changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import fakeredis
import jwt
import pytest
from fastapi.testclient import TestClient

from claimpay.jobstore import JobStore
from producer.main import create_app
from tests.factories import API_KEY, JWT_SECRET, NARROW_KEY, make_rows, make_settings
from tests.fakes import RecordingEnqueuer
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"


def acme_user_headers(database: str | None = None) -> dict[str, str]:
    """The all-databases key, but a token whose user may use `acme` only."""
    now = int(time.time())
    claims = {"sub": "acme-user", "iat": now, "exp": now + 600, "databases": ["acme"]}
    headers = {
        "x-api-key": API_KEY,
        "Authorization": "Bearer " + jwt.encode(claims, JWT_SECRET, algorithm="HS256"),
    }
    if database:
        headers["vbasoftware-database"] = database
    return headers


def demo_job(api: Api, auth_headers: Headers, run: bool) -> str:
    response = api.client.put(BATCH, json=make_rows(3), headers=auth_headers(database="demo"))
    assert response.status_code == 202
    if run:
        api.run_queued()
    job_id: str = response.json()["data"]["jobId"]
    return job_id


def outsiders(auth_headers: Headers) -> dict[str, dict[str, str]]:
    return {
        "key for acme only": auth_headers(database=None, key=NARROW_KEY),
        "key for acme only, naming demo": auth_headers(database="demo", key=NARROW_KEY),
        "user for acme only": acme_user_headers(),
        "user for acme only, naming demo": acme_user_headers("demo"),
        "allowed key naming another database": auth_headers(database="acme"),
    }


def comparable(response: Any) -> dict[str, Any]:
    """The problem without what differs per request (activity ID, path)."""
    body: dict[str, Any] = response.json()
    error = {k: v for k, v in body["error"].items() if k != "instance"}
    return {"status": response.status_code, "data": body["data"], "error": error}


def job_calls(job_id: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/results"),
        ("GET", f"/jobs/{job_id}/results?page=1&pageSize=2"),
        ("DELETE", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/retry"),
    ]


@pytest.mark.parametrize("finished", [False, True], ids=["queued", "completed"])
def test_every_job_route_answers_outsiders_like_an_unknown_job(
    api: Api, auth_headers: Headers, finished: bool
) -> None:
    job_id = demo_job(api, auth_headers, run=finished)
    unknown = "0" * 32
    for who, headers in outsiders(auth_headers).items():
        for (method, path), (_, unknown_path) in zip(
            job_calls(job_id), job_calls(unknown), strict=True
        ):
            foreign = api.client.request(method, path, headers=headers)
            missing = api.client.request(method, unknown_path, headers=headers)
            assert foreign.status_code == 404, (who, method, path, foreign.text)
            assert comparable(foreign) == comparable(missing), (who, method, path)
    state = api.client.get(f"/jobs/{job_id}", headers=auth_headers(database=None)).json()
    assert state["data"]["state"] == ("completed" if finished else "queued")  # not cancelled


def test_outsiders_cancel_nothing_and_the_owner_still_can(api: Api, auth_headers: Headers) -> None:
    job_id = demo_job(api, auth_headers, run=False)
    for headers in outsiders(auth_headers).values():
        assert api.client.delete(f"/jobs/{job_id}", headers=headers).status_code == 404
    assert api.store.meta(job_id) is not None
    assert not api.store.redis.hget(api.store.keys(job_id).meta, "cancel")
    owner = api.client.delete(f"/jobs/{job_id}", headers=auth_headers(database="demo"))
    assert owner.status_code in (200, 202)
    assert owner.json()["data"]["state"] in ("cancelling", "cancelled")


def test_job_listing_shows_only_the_callers_databases(api: Api, auth_headers: Headers) -> None:
    demo_id = demo_job(api, auth_headers, run=True)
    acme = api.client.put(BATCH, json=make_rows(1), headers=auth_headers(database="acme"))
    acme_id = acme.json()["data"]["jobId"]
    listed = {
        name: {job["jobId"] for job in api.client.get("/jobs", headers=headers).json()["data"]}
        for name, headers in {
            "owner": auth_headers(database=None),
            "narrow key": auth_headers(database=None, key=NARROW_KEY),
            "acme user": acme_user_headers(),
        }.items()
    }
    assert listed == {"owner": {demo_id, acme_id}, "narrow key": {acme_id}, "acme user": {acme_id}}
    asks_demo = api.client.get("/jobs", headers=auth_headers(database="demo", key=NARROW_KEY))
    assert asks_demo.status_code == 403


@pytest.mark.parametrize(
    "job_id",
    ["*", "0" * 31, "0" * 33, "G" * 32, "A" * 32, "..%2F..%2Fx", "x:rows:0", "%2A", " " * 32],
)
def test_job_ids_that_are_not_ids_never_reach_redis(
    api: Api, auth_headers: Headers, job_id: str
) -> None:
    keys_before = set(api.store.redis.keys("*"))
    for method in ("GET", "DELETE"):
        response = api.client.request(method, f"/jobs/{job_id}", headers=auth_headers())
        assert response.status_code == 404, response.text
    assert set(api.store.redis.keys("*")) - keys_before <= {
        key for key in api.store.redis.keys("*") if b":rate:" in key
    }


def test_job_ids_are_random_128_bit_hex(api: Api, auth_headers: Headers) -> None:
    ids = {
        api.client.put(BATCH, json=[], headers=auth_headers()).json()["data"]["jobId"]
        for _ in range(30)
    }
    assert len(ids) == 30
    assert all(len(job_id) == 32 and int(job_id, 16) >= 0 for job_id in ids)


def test_deployments_with_other_key_prefixes_do_not_see_each_others_jobs(
    tmp_path: Any, auth_headers: Headers
) -> None:
    server = fakeredis.FakeServer()
    clients = {}
    for prefix in ("tenant-a", "tenant-b"):
        settings = make_settings(
            key_prefix=prefix, databases={"demo": f"sqlite:///{tmp_path}/{prefix}.db"}
        )
        store = JobStore(fakeredis.FakeRedis(server=server), prefix, 3600)
        clients[prefix] = TestClient(create_app(settings, store, RecordingEnqueuer()))
    job_id = (
        clients["tenant-a"]
        .put(BATCH, json=make_rows(1), headers=auth_headers())
        .json()["data"]["jobId"]
    )
    assert clients["tenant-a"].get(f"/jobs/{job_id}", headers=auth_headers()).status_code == 200
    assert clients["tenant-b"].get(f"/jobs/{job_id}", headers=auth_headers()).status_code == 404
    for client in clients.values():
        client.close()
