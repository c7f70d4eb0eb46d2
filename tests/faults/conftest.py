"""Fixtures of the fault suite: isolated deployments, a test-owned Redis, the run's numbers."""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI, require_service
from tests.faults.redis_server import RedisServer
from tests.faults.stack import FaultStack, build_env, open_api, purge_namespace
from tests.integration.conftest import (
    PG_ADMIN_URL,
    PG_HOST,
    PG_PORT,
    REDIS_HOST,
    REDIS_PORT,
    scratch_postgres_database,
)

SHARED_REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
_REPORT = pytest.StashKey[list[str]]()

MakeStack = Callable[..., FaultStack]
Report = Callable[[str], None]


def pg_url(database: str, port: int = PG_PORT) -> str:
    return f"postgresql+psycopg://postgres@{PG_HOST}:{port}/{database}"


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[MakeStack]:
    """Builds a `FaultStack`: a fresh migrated database `acme`, a unique key prefix and
    queue, the API in-process. Torn down whatever happens: workers killed, keys and broker
    leftovers deleted, database dropped.

    `make_stack(redis_url=..., database_port=..., databases={...}, **env)`: the workers
    reach `acme` through `database_port` (a proxy, say); `env` overrides `CLAIMPAY_*`."""
    with contextlib.ExitStack() as exits:

        def make(
            *,
            redis_url: str = SHARED_REDIS_URL,
            database_port: int = PG_PORT,
            databases: dict[str, str] | None = None,
            **overrides: str,
        ) -> FaultStack:
            require_service("PostgreSQL", PG_HOST, PG_PORT)
            if redis_url == SHARED_REDIS_URL:
                require_service("Redis", REDIS_HOST, REDIS_PORT)
            namespace = f"cpf{secrets.token_hex(4)}"
            url = exits.enter_context(scratch_postgres_database("claimpay_faults"))
            engine = create_engine(url)
            exits.callback(engine.dispose)
            redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
            exits.callback(redis.close)
            exits.callback(_purge_quietly, redis, namespace)
            worker_url = pg_url(url.rsplit("/", 1)[1], database_port)
            env = build_env(
                namespace, redis_url, {"acme": worker_url, **(databases or {})}, overrides
            )
            workdir = tmp_path / namespace
            workdir.mkdir()
            stack = FaultStack(namespace, env, engine, redis, workdir)
            exits.enter_context(open_api(stack))
            exits.callback(stack.stop_all)
            return stack

        yield make


def _purge_quietly(redis: Redis, namespace: str) -> None:
    with contextlib.suppress(RedisError):
        purge_namespace(redis, namespace)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A test-owned `redis-server` with AOF (`appendfsync always`), killed afterwards."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not on PATH"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def bare_database() -> Iterator[str]:
    """URL of a new PostgreSQL database without claimpay's tables (never migrated)."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"claimpay_bare_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """Record one line of measured numbers; shown in the terminal summary of the run."""
    lines = request.config.stash.setdefault(_REPORT, [])

    def record(line: str) -> None:
        lines.append(f"{request.node.name}: {line}")

    return record


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(_REPORT, [])
    if lines:
        terminalreporter.section("claimpay fault suite: measured")
        for line in lines:
            terminalreporter.write_line(line)
