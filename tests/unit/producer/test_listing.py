"""`GET /jobs`: the caller's jobs, newest first, paged with `x-pagination`, index kept tidy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from claimpay.envelope import RowStatus, outcome
from claimpay.jobstore import JobStore
from producer.joblist import list_jobs
from tests.factories import NARROW_KEY
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]


def add_job(store: JobStore, job_id: str, database: str, submitted_ts: float) -> None:
    """A sealed one-row job, listed as submitted at `submitted_ts`."""
    store.begin(job_id, entity="claim-prompt-pays", database=database, user="u", chunk_size=10)
    store.redis.hset(store.keys(job_id).meta, "submittedTs", submitted_ts)
    store.write_rows(job_id, {0: [json.dumps([0, {"claimPromptPay_Key": 1}]).encode()]}, {})
    store.seal(job_id, total=1, chunk_nos=[0])


def job_id(n: int) -> str:
    return f"{n:032x}"


def listing(api: Api, headers: dict[str, str], query: str = "") -> tuple[list[str], Any]:
    response = api.client.get(f"/jobs{query}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    assert body["debug"]["activityID"]
    return [item["jobId"] for item in body["data"]], json.loads(response.headers["x-pagination"])


def test_newest_first_one_page_at_a_time(api: Api, auth_headers: Headers) -> None:
    now = time.time()
    for n in range(1, 6):
        add_job(api.store, job_id(n), "demo", now - 100 + n)
    headers = auth_headers(database=None)
    ids, pagination = listing(api, headers, "?page=1&pageSize=2")
    assert ids == [job_id(5), job_id(4)]
    assert pagination == {"TotalCount": 5, "TotalPages": 3, "CurrentPage": 1, "PageSize": 2}
    assert listing(api, headers, "?page=3&pageSize=2")[0] == [job_id(1)]
    assert listing(api, headers, "?page=4&pageSize=2")[0] == []


def test_items_are_the_job_status_objects(api: Api, auth_headers: Headers) -> None:
    add_job(api.store, job_id(1), "demo", time.time())
    headers = auth_headers(database=None)
    listed = api.client.get("/jobs", headers=headers).json()["data"]
    status = api.client.get(f"/jobs/{job_id(1)}", headers=headers).json()["data"]
    assert listed == [status]


def test_a_key_sees_only_its_databases_and_the_header_narrows(
    api: Api, auth_headers: Headers
) -> None:
    now = time.time()
    add_job(api.store, job_id(1), "demo", now - 2)
    add_job(api.store, job_id(2), "acme", now - 1)
    assert listing(api, auth_headers(database=None))[0] == [job_id(2), job_id(1)]
    assert listing(api, auth_headers(database="demo"))[0] == [job_id(1)]
    narrow = auth_headers(database=None, key=NARROW_KEY)
    assert listing(api, narrow)[0] == [job_id(2)]
    forbidden = api.client.get("/jobs", headers=auth_headers(database="demo", key=NARROW_KEY))
    assert forbidden.status_code == 403
    unknown = api.client.get("/jobs", headers=auth_headers(database="nowhere"))
    assert unknown.status_code == 400


def test_state_filter_counts_only_matching_jobs(api: Api, auth_headers: Headers) -> None:
    now = time.time()
    add_job(api.store, job_id(1), "demo", now - 2)
    add_job(api.store, job_id(2), "demo", now - 1)
    api.store.record_chunk(job_id(1), 0, [outcome(0, RowStatus.CREATED, 1)])
    headers = auth_headers(database=None)
    ids, pagination = listing(api, headers, "?state=completed")
    assert ids == [job_id(1)]
    assert pagination["TotalCount"] == 1
    assert listing(api, headers, "?state=queued")[0] == [job_id(2)]
    assert api.client.get("/jobs?state=receiving", headers=headers).status_code == 400
    assert api.client.get("/jobs?pageSize=0", headers=headers).status_code == 400


def test_jobs_still_receiving_are_not_listed(api: Api, auth_headers: Headers) -> None:
    api.store.begin(job_id(9), entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    assert listing(api, auth_headers(database=None)) == (
        [],
        {"TotalCount": 0, "TotalPages": 0, "CurrentPage": 1, "PageSize": 50},
    )


def test_expired_and_vanished_jobs_leave_the_index(job_store: JobStore) -> None:
    now = time.time()
    index = job_store.store_keys.jobs_of("demo")
    add_job(job_store, job_id(1), "demo", now - job_store.ttl_s - 10)  # older than the TTL
    add_job(job_store, job_id(2), "demo", now - 5)
    add_job(job_store, job_id(3), "demo", now - 1)
    job_store.redis.delete(job_store.keys(job_id(3)).meta)  # expired on its own
    page = list_jobs(job_store, ["demo"], now=now)
    assert [meta.job_id for meta in page.jobs] == [job_id(2)]
    assert page.total == 1
    assert job_store.redis.zrange(index, 0, -1) == [job_id(2).encode()]


@pytest.mark.parametrize("database", ["demo", "acme"])
def test_every_submitted_job_is_indexed_under_its_database(
    api: Api, auth_headers: Headers, database: str
) -> None:
    response = api.client.put(
        "/claim-prompt-pays-batch",
        content=json.dumps([{"claimPromptPay_Key": 1}]),
        headers=auth_headers(database=database),
    )
    assert response.status_code == 202, response.text
    submitted = response.json()["data"]["jobId"]
    assert listing(api, auth_headers(database=database))[0] == [submitted]
