"""The API's operations surface in-process: /metrics, /health/ready, queue routing, logs."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from claimpay.jobstore import JobStore
from claimpay.logs import ContextFilter
from claimpay.schema import SCHEMA_REVISION
from producer.main import create_app
from tests.factories import make_row, make_settings
from tests.fakes import RecordingEnqueuer
from tests.unit.producer.conftest import Api
from worker.migrate import upgrade

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """`/metrics` as {(sample name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_requests_are_counted_by_route_template_never_by_path(
    api: Api, auth_headers: Headers
) -> None:
    unknown = "ab" * 16
    assert api.client.get(f"/jobs/{unknown}", headers=auth_headers()).status_code == 404
    assert api.client.get("/no/such/path/42").status_code == 404
    metrics = scrape(api.client)
    route = (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "404"))
    assert metrics[("claimpay_http_requests_total", route)] == 1
    unmatched = (("method", "GET"), ("route", "<unmatched>"), ("status", "404"))
    assert metrics[("claimpay_http_requests_total", unmatched)] == 1
    text = api.client.get("/metrics").text
    assert unknown not in text
    assert "/no/such/path" not in text


def test_job_counters_move_by_the_job_that_ran(api: Api, auth_headers: Headers) -> None:
    rows = [make_row(1), make_row(2), {"claimPromptPay_Key": 3, "plan_ID": 5}]
    response = api.client.put(BATCH, content=json.dumps(rows), headers=auth_headers())
    assert response.status_code == 202, response.text
    api.run_queued()
    metrics = scrape(api.client)
    assert metrics[("claimpay_job_store_up", ())] == 1
    assert metrics[("claimpay_jobs_submitted_total", ())] == 1
    assert metrics[("claimpay_rows_submitted_total", ())] == 3
    assert metrics[("claimpay_jobs_finished_total", (("state", "completed"),))] == 1
    assert metrics[("claimpay_rows_total", (("outcome", "created"),))] == 2
    assert metrics[("claimpay_rows_total", (("outcome", "failed"),))] == 1
    assert metrics[("claimpay_job_rows_bucket", (("le", "10.0"),))] == 1
    assert metrics[("claimpay_job_rows_bucket", (("le", "1.0"),))] == 0
    assert metrics[("claimpay_job_rows_sum", ())] == 3
    assert metrics[("claimpay_job_duration_seconds_count", ())] == 1
    assert metrics[("claimpay_jobs_active", ())] == 0
    for queue in ("claimpay", "claimpay.fast"):
        assert metrics[("claimpay_queue_depth", (("queue", queue),))] == 0
        assert metrics[("claimpay_oldest_waiting_chunk_age_seconds", (("queue", queue),))] == 0
    accepted = (("method", "PUT"), ("route", BATCH), ("status", "202"))
    assert metrics[("claimpay_http_requests_total", accepted)] == 1


def test_small_jobs_go_to_the_fast_queue_and_large_ones_to_the_main_queue(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(fast_queue_max_rows=2)
    small = api.client.put(BATCH, content=json.dumps([make_row(1), make_row(2)]),
                           headers=auth_headers()).json()["data"]["jobId"]  # fmt: skip
    large = api.client.put(BATCH, content=json.dumps([make_row(k) for k in range(3)]),
                           headers=auth_headers()).json()["data"]["jobId"]  # fmt: skip
    assert api.enqueuer.queues == {small: "claimpay.fast", large: "claimpay"}
    small_meta, large_meta = api.store.meta(small), api.store.meta(large)
    assert small_meta is not None
    assert large_meta is not None
    assert (small_meta.queue, large_meta.queue) == ("claimpay.fast", "claimpay")


def test_ready_when_redis_and_every_database_answer(api: Api) -> None:
    response = api.client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    assert body["data"]["status"] == "ready"
    assert set(body["data"]["checks"]) == {"redis", "database:acme", "database:demo"}
    assert all(check["ok"] for check in body["data"]["checks"].values())
    assert SCHEMA_REVISION in body["data"]["checks"]["database:demo"]["detail"]


@pytest.fixture
def mixed_databases(tmp_path: Path) -> dict[str, str]:
    """One current, one empty, one missing, one a migration behind."""
    sqlite3.connect(tmp_path / "empty.db").close()
    urls = {
        "current": f"sqlite:///{tmp_path}/current.db",
        "empty": f"sqlite:///{tmp_path}/empty.db",
        "missing": f"sqlite:///{tmp_path}/missing.db",
        "behind": f"sqlite:///{tmp_path}/behind.db",
    }
    upgrade(urls["current"])
    upgrade(urls["behind"], "0001")
    return urls


@pytest.fixture
def mixed_client(job_store: JobStore, mixed_databases: dict[str, str]) -> Iterator[TestClient]:
    settings = make_settings(databases=mixed_databases)
    app = create_app(settings, store=job_store, enqueuer=RecordingEnqueuer())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_not_ready_says_which_database_failed_and_why(mixed_client: TestClient) -> None:
    response = mixed_client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    error = body["error"]
    assert error["status"] == 503
    assert error["type"] == "urn:claimpay:problem:not-ready"
    assert error["instance"] == "/health/ready"
    checks = body["data"]["checks"]
    assert checks["redis"]["ok"]
    assert checks["database:current"]["ok"]
    assert "not migrated" in checks["database:empty"]["detail"]
    assert "missing" in checks["database:missing"]["detail"]
    assert f"schema at 0001, expected {SCHEMA_REVISION}" in checks["database:behind"]["detail"]
    for name in ("empty", "missing", "behind"):
        assert f"database:{name}: " in error["detail"]
    assert "database:current" not in error["detail"]


def test_not_ready_when_redis_does_not_answer(
    job_store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    upgrade(url)
    app = create_app(make_settings(databases={"demo": url}), store=job_store,
                     enqueuer=RecordingEnqueuer())  # fmt: skip

    def down() -> None:
        raise ConnectionError("connection refused to redis://secret-host")

    monkeypatch.setattr(app.state.readiness, "_ping_redis", down)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["error"]["detail"] == "redis: unreachable (ConnectionError)"
    assert "secret-host" not in response.text


def test_a_request_logs_its_activity_id_and_errors_echo_it(
    api: Api, auth_headers: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    context = ContextFilter()
    caplog.handler.addFilter(context)
    try:
        with caplog.at_level(logging.INFO, logger="claimpay.access"):
            response = api.client.get(f"/jobs/{'cd' * 16}", headers=auth_headers())
    finally:
        caplog.handler.removeFilter(context)
    (record,) = [r for r in caplog.records if r.name == "claimpay.access"]
    assert (record.route, record.status, record.method) == ("/jobs/{job_id}", 404, "GET")  # type: ignore[attr-defined]
    activity = record.claimpay_context["activityID"]  # type: ignore[attr-defined]
    assert response.json()["debug"]["activityID"] == activity


def test_request_logs_name_the_job_they_are_about(
    api: Api, auth_headers: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    context = ContextFilter()
    caplog.handler.addFilter(context)
    try:
        with caplog.at_level(logging.INFO):
            accepted = api.client.put(BATCH, content=json.dumps([make_row(1)]),
                                      headers=auth_headers())  # fmt: skip
            job_id = accepted.json()["data"]["jobId"]
            api.client.get(f"/jobs/{job_id}", headers=auth_headers())
    finally:
        caplog.handler.removeFilter(context)
    access = [r for r in caplog.records if r.name == "claimpay.access"]
    assert [r.claimpay_context.get("jobId") for r in access] == [job_id, job_id]  # type: ignore[attr-defined]
    accepted_line = [r for r in caplog.records if "accepted" in r.getMessage()]
    assert accepted_line[0].claimpay_context["database"] == "demo"  # type: ignore[attr-defined]
