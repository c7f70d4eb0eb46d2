"""Limits of the batch call: media type (415), body, rows and row size (413), nesting,
duplicate names and bad values (400), request rate and unfinished jobs per key (429)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import orjson
import pytest
from fastapi.testclient import TestClient

from claimpay.jobstore import JobStore
from producer.main import create_app
from tests.factories import NARROW_KEY, make_row, make_rows, make_settings
from tests.fakes import RecordingEnqueuer
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"
MODES = {
    "one run": {},
    "short runs": {"intake_buffer_bytes": 100},
    "a run per row": {"intake_buffer_bytes": 0},
}
"""Run sizes of the intake: a small body is one run, a large one many (cut where guessed, or
found by the exact scan when a run is shorter than a row)."""


def put(api: Api, body: bytes | Iterator[bytes], headers: dict[str, str]) -> Any:
    return api.client.put(BATCH, content=body, headers=headers)


def problem_type(response: Any) -> str:
    body = response.json()
    assert body["data"] is None
    assert "Traceback" not in response.text
    slug: str = body["error"]["type"].removeprefix("urn:claimpay:problem:")
    return slug


def nothing_stored(api: Api) -> bool:
    return api.store.redis.keys("t:job:*") == [] and api.enqueuer.queued == []


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/xml",
        "json",
    ],
)
def test_a_body_that_is_not_json_is_415(api: Api, auth_headers: Headers, content_type: str) -> None:
    response = put(
        api, orjson.dumps(make_rows(1)), {**auth_headers(), "Content-Type": content_type}
    )
    assert response.status_code == 415
    assert problem_type(response) == "unsupported-media-type"
    assert nothing_stored(api)


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "Application/JSON; charset=UTF-8", "application/vnd.x+json"],
)
def test_json_media_types_are_accepted(
    api: Api, auth_headers: Headers, content_type: str | None
) -> None:
    headers = auth_headers()
    if content_type:
        headers["Content-Type"] = content_type
    assert put(api, orjson.dumps(make_rows(1)), headers).status_code == 202


def test_a_compressed_body_is_415(api: Api, auth_headers: Headers) -> None:
    headers = {**auth_headers(), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = put(api, b"\x1f\x8b\x08\x00", headers)
    assert (response.status_code, problem_type(response)) == (415, "unsupported-content-encoding")


def test_auth_and_database_problems_come_before_the_media_type(
    api: Api, auth_headers: Headers
) -> None:
    text = {"Content-Type": "text/plain"}
    assert put(api, b"x", {**auth_headers(key="wrong"), **text}).status_code == 401
    assert put(api, b"x", {**auth_headers(database="nowhere"), **text}).status_code == 400
    assert put(api, b"x", {**auth_headers(key=NARROW_KEY), **text}).status_code == 403


def test_a_declared_length_over_the_limit_is_413_before_reading(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(max_body_bytes=4096)
    read: list[bytes] = []

    def body() -> Iterator[bytes]:
        read.append(b"[")
        yield b"[]"

    headers = {**auth_headers(), "Content-Length": "5000"}
    response = api.client.put(BATCH, content=body(), headers=headers)
    assert (response.status_code, problem_type(response)) == (413, "body-too-large")
    assert read == []
    assert nothing_stored(api)


@pytest.mark.parametrize("mode", MODES)
def test_a_body_streaming_past_the_limit_is_413_and_discarded(
    make_api: Callable[..., Api], auth_headers: Headers, mode: str
) -> None:
    api = make_api(max_body_bytes=64 * 1024, **MODES[mode])

    def body() -> Iterator[bytes]:  # no Content-Length: chunked
        yield b"["
        for key in range(100_000):
            yield orjson.dumps(make_row(key + 1)) + b","
        yield b"{}]"

    response = api.client.put(BATCH, content=body(), headers=auth_headers())
    assert (response.status_code, problem_type(response)) == (413, "body-too-large")
    assert nothing_stored(api)  # reading stops at the limit: tests/integration/test_hostile


@pytest.mark.parametrize("mode", MODES)
def test_rows_over_the_limit_are_413_and_discarded(
    make_api: Callable[..., Api], auth_headers: Headers, mode: str
) -> None:
    api = make_api(max_rows=10, chunk_size=3, **MODES[mode])
    assert put(api, orjson.dumps(make_rows(10)), auth_headers()).status_code == 202
    api.enqueuer.queued.clear()
    api.store.redis.flushall()
    response = put(api, orjson.dumps(make_rows(11)), auth_headers())
    assert (response.status_code, problem_type(response)) == (413, "too-many-rows")
    assert "10" in response.json()["error"]["detail"]
    assert nothing_stored(api)


@pytest.mark.parametrize("mode", MODES)
def test_a_huge_string_is_413(
    make_api: Callable[..., Api], auth_headers: Headers, mode: str
) -> None:
    api = make_api(max_row_bytes=1024, **MODES[mode])
    rows = [make_row(1), make_row(2, tax_ID="9" * 5000), make_row(3)]
    response = put(api, orjson.dumps(rows), auth_headers())
    assert (response.status_code, problem_type(response)) == (413, "row-too-large")
    assert nothing_stored(api)
    fits = [make_row(1, tax_ID="9" * 700)]  # over the column's length: a row result, later
    assert put(api, orjson.dumps(fits), auth_headers()).status_code == 202


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("body", "slug"),
    [
        (b'[{"claimPromptPay_Key": 1, "tax_ID": [[[[[[[["x"]]]]]]]]}]', "nesting-too-deep"),
        (b"[" * 10_000 + b"]" * 10_000, "nesting-too-deep"),
        (b'[{"claimPromptPay_Key": 1, "claimPromptPay_Key": 2}]', "duplicate-keys"),
        (b'[{"claimPromptPay_Key": 1, "group_ID": "a", "group_ID" : "b"}]', "duplicate-keys"),
        (b'[{"claimPromptPay_Key": NaN}]', "malformed-body"),
        (b'[{"claimPromptPay_Key": Infinity}]', "malformed-body"),
        (b'[{"claimPromptPay_Key": -Infinity}]', "malformed-body"),
        (b'[{"claimPromptPay_Key": 1, "prompt_Pay_Duration": 1e400}]', "malformed-body"),
        (b'[{"claimPromptPay_Key": 1, "tax_ID": "\xff\xfe"}]', "malformed-body"),
        (b'[{"claimPromptPay_Key": 1, "tax_ID": "\xc3"}]', "malformed-body"),
        (b"\x00\x01garbage", "malformed-body"),
        (b"   nonsense", "malformed-body"),
    ],
)
def test_hostile_bodies_are_clear_4xx_and_store_nothing(
    make_api: Callable[..., Api], auth_headers: Headers, mode: str, body: bytes, slug: str
) -> None:
    api = make_api(**MODES[mode])
    response = put(api, body, auth_headers())
    assert 400 <= response.status_code < 500, response.text
    assert problem_type(response) == slug, response.text
    assert nothing_stored(api)
    assert put(api, orjson.dumps(make_rows(2)), auth_headers()).status_code == 202


@pytest.mark.parametrize("mode", MODES)
def test_an_unpaired_surrogate_is_refused(
    make_api: Callable[..., Api], auth_headers: Headers, mode: str
) -> None:
    """`"\\ud800"` is valid JSON text for no character: 400, and nothing stored."""
    api = make_api(**MODES[mode])
    body = b'[{"claimPromptPay_Key": 1}, {"claimPromptPay_Key": 2, "tax_ID": "\\ud800"}]'
    response = put(api, body, auth_headers())
    assert (response.status_code, problem_type(response)) == (400, "malformed-body")
    assert nothing_stored(api)


@pytest.mark.parametrize("mode", MODES)
def test_flat_rows_with_wrong_types_are_still_row_results(
    make_api: Callable[..., Api], auth_headers: Headers, mode: str
) -> None:
    """Within the depth limit, a nested value is the row's problem (400 row result)."""
    api = make_api(**MODES[mode])
    rows = [make_row(1, group_ID={"a": 1}), make_row(2, plan_ID=[1, 2]), make_row(3)]
    job = put(api, orjson.dumps(rows), auth_headers()).json()["data"]["jobId"]
    api.run_queued()
    data = api.client.get(f"/jobs/{job}/results", headers=auth_headers()).json()["data"]
    assert [item["status"] for item in data] == [400, 400, 201]


def test_the_rate_limit_answers_429_with_retry_after(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(rate_limit_per_s=1, rate_limit_burst=5)
    headers = auth_headers()
    statuses = [api.client.get("/jobs", headers=headers).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    limited = api.client.get("/jobs", headers=headers)
    assert problem_type(limited) == "rate-limited"
    assert int(limited.headers["retry-after"]) >= 1
    other_key = api.client.get("/jobs", headers=auth_headers(key=NARROW_KEY, database="acme"))
    assert other_key.status_code == 200
    unauthenticated = api.client.get("/jobs", headers={**headers, "x-api-key": "wrong"})
    assert unauthenticated.status_code == 401


def test_the_bucket_refills_at_the_sustained_rate(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    # A slow rate, so that a loaded machine cannot refill a token between the first three
    # requests; the bucket runs on Redis's clock, so the test waits for a token for real.
    api = make_api(rate_limit_per_s=2, rate_limit_burst=2)
    headers = auth_headers()
    assert [api.client.get("/jobs", headers=headers).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    time.sleep(0.6)
    assert api.client.get("/jobs", headers=headers).status_code == 200


def test_the_rate_limit_is_shared_by_every_api_process(
    tmp_path: Any, auth_headers: Headers
) -> None:
    server = fakeredis.FakeServer()
    settings = make_settings(
        rate_limit_per_s=0.5,
        rate_limit_burst=4,
        databases={"demo": f"sqlite:///{tmp_path}/demo.db"},
    )
    apps = [
        TestClient(create_app(settings, JobStore(fakeredis.FakeRedis(server=server), "t", 3600), e))
        for e in (RecordingEnqueuer(), RecordingEnqueuer())
    ]
    statuses = [apps[n % 2].get("/jobs", headers=auth_headers()).status_code for n in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    for client in apps:
        client.close()


def test_login_attempts_count_against_the_rate_limit(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(rate_limit_per_s=1, rate_limit_burst=3)
    headers = {"x-api-key": auth_headers()["x-api-key"], "vbasoftware-database": "demo"}
    statuses = [
        api.client.post("/user-authentication", headers=headers).status_code for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


def test_unfinished_jobs_per_key_are_limited(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(max_active_jobs_per_key=2)
    body = orjson.dumps(make_rows(2))
    assert [put(api, body, auth_headers()).status_code for _ in range(2)] == [202, 202]
    refused = put(api, body, auth_headers())
    assert (refused.status_code, problem_type(refused)) == (429, "too-many-active-jobs")
    assert refused.headers["retry-after"]
    assert put(api, body, auth_headers(key=NARROW_KEY, database="acme")).status_code == 202
    api.run_queued()
    assert put(api, body, auth_headers()).status_code == 202


def test_a_refused_body_gives_its_slot_back(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(max_active_jobs_per_key=1)
    gatekeeper = api.client.app.state.gatekeeper  # type: ignore[attr-defined]
    gatekeeper.active_jobs.grace_s = 0.0
    assert put(api, b"[1,", auth_headers()).status_code == 400
    assert put(api, orjson.dumps(make_rows(1)), auth_headers()).status_code == 202
    assert put(api, orjson.dumps(make_rows(1)), auth_headers()).status_code == 429


@pytest.mark.parametrize("mode", MODES)
def test_a_repeated_name_is_found_beside_a_string_row_that_looks_like_an_object(
    make_api: Callable[..., Api], auth_headers: Headers, mode: str
) -> None:
    api = make_api(**MODES[mode])
    body = b'["{}xxxxxxxx", {"claimPromptPay_Key": 1, "tax_ID": "a", "tax_ID": "b"}]'
    response = put(api, body, auth_headers())
    assert (response.status_code, problem_type(response)) == (400, "duplicate-keys")
    assert nothing_stored(api)
