"""Policy is data: page sizes, `Retry-After` and the intake limits come from the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from claimpay.settings import Settings
from producer.limits import IntakeLimits
from tests.factories import make_rows, make_settings
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]


def bounds(api: Api, path: str) -> dict[str, Any]:
    operation = api.client.app.openapi()["paths"][path]["get"]  # type: ignore[attr-defined]
    page_size = next(p for p in operation["parameters"] if p["name"] == "pageSize")
    schema: dict[str, Any] = page_size["schema"]
    bound: dict[str, Any] = schema.get("anyOf", [schema])[0]
    return {**bound, "default": schema.get("default")}


def test_page_sizes_and_their_bounds_come_from_the_settings(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(
        jobs_page_size=7,
        jobs_max_page_size=9,
        rows_page_size=3,
        rows_max_page_size=4,
        results_page_size=10,
        results_max_page_size=11,
    )
    assert bounds(api, "/jobs")["maximum"] == 9
    assert bounds(api, "/jobs")["default"] == 7
    assert bounds(api, "/claim-prompt-pays")["maximum"] == 4
    assert bounds(api, "/jobs/{job_id}/results")["maximum"] == 11
    headers = auth_headers(database=None)
    assert api.client.get("/jobs?pageSize=9", headers=headers).status_code == 200
    assert api.client.get("/jobs?pageSize=10", headers=headers).status_code == 400
    listed = api.client.get("/jobs", headers=headers)
    assert '"PageSize":7' in listed.headers["x-pagination"]
    rows = api.client.get("/claim-prompt-pays", headers=auth_headers())
    assert '"PageSize":3' in rows.headers["x-pagination"]


def test_the_defaults_are_the_documented_ones(api: Api) -> None:
    assert bounds(api, "/jobs")["maximum"] == 1_000
    assert bounds(api, "/jobs")["default"] == 50
    assert bounds(api, "/claim-prompt-pays")["maximum"] == 1_000
    assert bounds(api, "/claim-prompt-pays")["default"] == 100
    assert bounds(api, "/jobs/{job_id}/results")["maximum"] == 10_000
    settings = Settings()
    assert (settings.retry_after_s, settings.rerun_lock_ttl_s) == (5, 120)
    assert settings.idempotency_claim_ttl_s == 15
    assert settings.stuck_whatever_the_queue_s() == 10 * settings.stuck_after_s


def test_a_default_page_size_above_its_bound_is_refused() -> None:
    with pytest.raises(ValidationError, match="jobs_page_size must not exceed"):
        make_settings(jobs_page_size=2_000)


def test_retry_after_of_a_store_outage_is_the_setting(
    make_api: Callable[..., Api], auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(retry_after_s=42)

    def down(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("down")

    monkeypatch.setattr(api.store, "meta", down)
    answer = api.client.get("/jobs/" + "a" * 32, headers=auth_headers())
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "42"


def test_too_many_active_jobs_waits_the_setting(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(max_active_jobs_per_key=1, retry_after_s=9)
    body = make_rows(2)
    first = api.client.put("/claim-prompt-pays-batch", json=body, headers=auth_headers())
    assert first.status_code == 202
    second = api.client.put("/claim-prompt-pays-batch", json=body, headers=auth_headers())
    assert second.status_code == 429
    assert second.headers["retry-after"] == "9"


def test_intake_limits_default_to_the_settings_defaults() -> None:
    assert IntakeLimits() == IntakeLimits.of(Settings())
