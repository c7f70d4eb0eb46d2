"""The compose stack's operations agree with the code: worker liveness and metrics,
Prometheus scraping the API and every worker replica, production settings and JSON logs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from claimpay.settings import Settings
from producer.routes import metrics
from tests.unit.test_compose import (
    ALL_INTERFACES,
    APP_SERVICES,
    ROOT,
    compose,
    option_value,
    resolve_cli,
    service_argv,
    services,
)

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
__all__ = ["compose", "services"]  # the fixtures, shared with test_compose


def test_worker_healthcheck_pings_its_own_celery_node(
    services: dict[str, dict[str, Any]],
) -> None:
    test = services["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    command, args = resolve_cli(test[1:])
    assert command == "worker-health"
    assert "--any" not in args, "each replica answers for itself"


def test_workers_serve_metrics_where_prometheus_looks(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for key in Settings.model_fields:
        monkeypatch.delenv(f"CLAIMPAY_{key.upper()}", raising=False)
    for key, value in services["worker"]["environment"].items():
        monkeypatch.setenv(key, str(value))
    settings = Settings()
    assert settings.worker_metrics_port > 0
    assert settings.worker_metrics_address == ALL_INTERFACES
    assert str(settings.worker_metrics_port) in [str(p) for p in services["worker"]["expose"]]
    (worker_job,) = [job for job in prometheus_jobs() if job["job_name"] == "claimpay-worker"]
    (discovery,) = worker_job["dns_sd_configs"]
    assert discovery["names"] == ["worker"], "DNS lists every replica of the worker service"
    assert discovery["port"] == settings.worker_metrics_port


def test_prometheus_scrapes_the_api_port_and_route(services: dict[str, dict[str, Any]]) -> None:
    _, args = resolve_cli(service_argv(services["api"]))
    (api_job,) = [job for job in prometheus_jobs() if job["job_name"] == "claimpay-api"]
    assert api_job["static_configs"][0]["targets"] == [f"api:{option_value(args, '--port')}"]
    assert api_job["metrics_path"] == "/metrics"
    assert "/metrics" in {getattr(route, "path", "") for route in metrics.router.routes}


def test_prometheus_is_optional_and_reads_the_repository_config(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prometheus["image"])
    mounts = [str(volume).split(":") for volume in prometheus["volumes"]]
    config = [m for m in mounts if m[0].startswith("./")]
    assert config == [["./deploy/prometheus.yml", "/etc/prometheus/prometheus.yml", "ro"]]
    assert (ROOT / config[0][0]).is_file()
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_every_app_service_logs_json_in_production(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert environment["CLAIMPAY_ENV"] == "prod"
        assert environment["CLAIMPAY_LOG_FORMAT"] == "json"


def prometheus_jobs() -> list[dict[str, Any]]:
    config = cast(dict[str, Any], yaml.safe_load(PROMETHEUS_CONFIG.read_text()))
    return cast(list[dict[str, Any]], config["scrape_configs"])
