"""Settings: validated bounds, sane database names, safe defaults."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import ValidationError

from claimpay.settings import Settings
from tests.factories import make_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own CLAIMPAY_* variables must not leak into these tests."""
    for name in [name for name in os.environ if name.startswith("CLAIMPAY_")]:
        monkeypatch.delenv(name)


def test_defaults_are_valid() -> None:
    settings = Settings(_env_file=None)
    assert settings.visibility_timeout_s > (
        settings.db_statement_timeout_s + settings.retry_backoff_max_s
    )
    assert settings.databases == {"demo": "sqlite:///var/demo.db"}


@pytest.mark.parametrize(
    ("visibility", "statement", "backoff_max"),
    [(360, 300, 60.0), (300, 300, 60.0), (3600, 3600, 1.0), (100, 30, 70.5)],
)
def test_visibility_timeout_must_outlast_statement_and_backoff(
    visibility: int, statement: int, backoff_max: float
) -> None:
    with pytest.raises(ValidationError, match="visibility_timeout_s must exceed"):
        make_settings(
            visibility_timeout_s=visibility,
            db_statement_timeout_s=statement,
            retry_backoff_max_s=backoff_max,
        )


def test_visibility_timeout_just_above_the_sum_is_accepted() -> None:
    settings = make_settings(
        visibility_timeout_s=361, db_statement_timeout_s=300, retry_backoff_max_s=60.0
    )
    assert settings.visibility_timeout_s == 361


@pytest.mark.parametrize("name", ["", "a b", "a.b", "demo;drop", "x/y", "x" * 65, "dé mo"])
def test_bad_database_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError, match="database name"):
        make_settings(databases={name: "sqlite:///:memory:"})


@pytest.mark.parametrize("name", ["demo", "acme-1", "tenant_02", "x" * 64, "A"])
def test_plain_database_names_are_accepted(name: str) -> None:
    assert name in make_settings(databases={name: "sqlite:///:memory:"}).databases


@pytest.mark.parametrize(
    "overrides",
    [{"chunk_size": 0}, {"chunk_size": 50_001}, {"key_prefix": "a:b"}, {"queue": ""},
     {"result_ttl_s": 59}, {"max_retries": -1}, {"retry_backoff_s": 0},
     {"jwt_algorithm": "none"}, {"jwt_leeway_s": 301}],
)  # fmt: skip
def test_out_of_bounds_policy_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_settings(**overrides)


def test_settings_read_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMPAY_CHUNK_SIZE", "250")
    monkeypatch.setenv("CLAIMPAY_DATABASES", '{"acme": "postgresql+psycopg://h/acme"}')
    settings = Settings(_env_file=None)
    assert settings.chunk_size == 250
    assert settings.databases == {"acme": "postgresql+psycopg://h/acme"}


def test_missing_jwt_secret_refuses_to_run() -> None:
    with pytest.raises(RuntimeError, match="CLAIMPAY_JWT_SECRET"):
        make_settings(jwt_secret=None).jwt_secret_value()
    with pytest.raises(RuntimeError, match="CLAIMPAY_JWT_SECRET"):
        make_settings(jwt_secret="").jwt_secret_value()


def test_missing_redis_url_refuses_to_run() -> None:
    with pytest.raises(RuntimeError, match="CLAIMPAY_REDIS_URL"):
        make_settings(redis_url=None).require_redis_url()
    assert make_settings().require_redis_url() == "redis://127.0.0.1:6379/0"
