"""The servers the benchmark needs: refuse clearly when one is down, and leave nothing behind
(the scratch PostgreSQL database is dropped, the run's Redis keys deleted)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import sql
from redis import Redis
from redis.exceptions import RedisError

from bench.config import BenchConfig
from bench.signals import uninterruptible

CONNECT_TIMEOUT_S = 3


class ServerUnavailable(Exception):
    """Raised when PostgreSQL or Redis does not answer; the message says which and how."""


def check_servers(config: BenchConfig) -> None:
    """Connect to both servers once; `ServerUnavailable` names the first that fails."""
    try:
        with psycopg.connect(config.pg_admin_url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise ServerUnavailable(
            f"PostgreSQL is unreachable at {config.pg_admin_url} ({_first_line(exc)}); "
            "start it or pass --pg URL"
        ) from exc
    try:
        with _redis(config) as redis:
            redis.ping()
    except RedisError as exc:
        raise ServerUnavailable(
            f"Redis is unreachable at {config.redis_url} ({_first_line(exc)}); "
            "start it or pass --redis URL"
        ) from exc


def server_versions(config: BenchConfig) -> dict[str, str]:
    """PostgreSQL's and Redis's version strings."""
    with psycopg.connect(config.pg_admin_url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    with _redis(config) as redis:
        info = redis.info("server")
    return {
        "postgresql": str(row[0]) if row else "?",
        "redis": str(info.get("redis_version", "?")),
    }


@contextlib.contextmanager
def scratch_database(config: BenchConfig) -> Iterator[str]:
    """Create the run's PostgreSQL database; drop it (and its connections) on exit."""
    name = sql.Identifier(config.scratch_db)
    with psycopg.connect(config.pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield config.scratch_db
    finally:
        with uninterruptible(), psycopg.connect(config.pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


@contextlib.contextmanager
def redis_namespace(config: BenchConfig) -> Iterator[None]:
    """On exit, delete every Redis key of the run: its job store prefix and its queue."""
    try:
        yield
    finally:
        with uninterruptible(), _redis(config) as redis:
            queue = config.queue
            patterns = (
                f"{config.key_prefix}:*",
                f"{queue}*",
                f"_kombu.binding.{queue}*",
                f"_kombu.binding_permanent.{queue}*",
            )
            for pattern in patterns:
                keys = list(redis.scan_iter(match=pattern, count=1000))
                for start in range(0, len(keys), 1000):
                    redis.delete(*keys[start : start + 1000])


@contextlib.contextmanager
def _redis(config: BenchConfig) -> Iterator[Redis]:
    client = Redis.from_url(config.redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S)
    try:
        yield client
    finally:
        client.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
