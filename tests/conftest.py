"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import fakeredis
import pytest

from claimpay.jobstore import JobStore
from claimpay.logs import reset_context
from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET
from worker.engines import make_engine
from worker.migrate import upgrade

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a real server is absent on a developer's machine; fail in CI."""
    if port_open(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}, and CI=true requires it")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _fresh_log_context() -> Iterator[None]:
    """Every test starts with an empty log context: code that `bind`s outside any
    `log_context` (a chunk run called directly) would otherwise leak into the next test."""
    reset_context()
    yield
    reset_context()


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


@pytest.fixture
def job_store(fake_redis: fakeredis.FakeRedis) -> JobStore:
    return JobStore(fake_redis, prefix="t", ttl_s=3600)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file database."""
    url = f"sqlite:///{tmp_path / 'claimpay.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[object]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def auth_headers() -> Callable[..., dict[str, str]]:
    """Headers of a valid call: `auth_headers(database="demo", user="alice", key=API_KEY)`."""

    def build(
        database: str | None = "demo", user: str = "alice", key: str = API_KEY
    ) -> dict[str, str]:
        headers = {"x-api-key": key, "Authorization": f"Bearer {mint_token(JWT_SECRET, user, 600)}"}
        if database is not None:
            headers["vbasoftware-database"] = database
        return headers

    return build
