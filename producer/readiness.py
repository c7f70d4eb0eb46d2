"""Readiness: may this API instance take traffic? Redis answers, and every configured
database answers and carries the schema revision this code expects.

Checks run in parallel, each bounded by `readiness_timeout_s`; a failing check says what
failed with the exception's type, never its message (which may carry a host or a value).
The expected revision comes from the contracts (`claimpay.schema`): the producer reads the
Alembic version table with plain SQLAlchemy, it does not import the worker's migrations.
In production (`CLAIMPAY_ENV=prod`) the Redis check also warns, without failing, when Redis
persists nothing (no AOF, no snapshots): a restart would lose every accepted job.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry
from sqlalchemy import Engine, column, select, table
from sqlalchemy.engine import make_url

from claimpay.engines import DbLimits, EngineRegistry, make_engine
from claimpay.errors import ClaimpayError
from claimpay.schema import SCHEMA_REVISION, VERSION_TABLE
from claimpay.settings import Settings

log = logging.getLogger("claimpay.producer")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One dependency's answer."""

    name: str
    ok: bool
    detail: str
    warning: str | None = None
    """Something an operator should fix that does not stop this instance serving."""

    def public(self) -> dict[str, Any]:
        found: dict[str, Any] = {"ok": self.ok, "detail": self.detail}
        if self.warning:
            found["warning"] = self.warning
        return found


NO_PERSISTENCE = (
    "Redis persists nothing (appendonly no, no save points): a restart loses every job "
    "accepted and not finished; turn on AOF (appendonly yes)"
)


def persistence_warning(redis: Redis) -> str | None:
    """`NO_PERSISTENCE` when Redis has neither AOF nor snapshots on; None when it has, or
    when it will not say (`CONFIG` disabled, as on some managed services)."""
    try:
        aof = redis.config_get("appendonly").get("appendonly")
        save = redis.config_get("save").get("save")
    except ResponseError:
        return None
    if aof in ("yes", b"yes") or (save and save.strip()):
        return None
    return NO_PERSISTENCE


def probe_redis(url: str, timeout_s: float) -> Redis:
    """A Redis client for probes: short timeouts, no retries, connects on first use."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


class Readiness:
    """Runs the readiness checks; engines are built on first use and kept.

    `results` is what `/health/ready` answers: one run of the checks at a time, on a
    thread of its own (never the pool the routes share), its answer reused for
    `readiness_cache_s`; callers arriving meanwhile wait for that same run. So any number
    of unauthenticated probes costs one run per `readiness_cache_s`."""

    def __init__(
        self,
        settings: Settings,
        ping_redis: Callable[[], object],
        redis_warning: Callable[[], str | None] | None = None,
    ) -> None:
        self._databases = dict(settings.databases)
        self._timeout_s = settings.readiness_timeout_s
        self._cache_s = settings.readiness_cache_s
        self._ping_redis = ping_redis
        self._redis_warning = redis_warning if settings.env == "prod" else None
        self._engines = EngineRegistry(
            self._databases, partial(_probe_engine, timeout_s=self._timeout_s)
        )
        self._lock = threading.Lock()
        self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness-run")
        self._latest: tuple[float, list[CheckResult]] | None = None
        self._running: Future[list[CheckResult]] | None = None
        self.runs = 0
        """How many times the checks ran (for tests and curious operators)."""

    async def results(self) -> list[CheckResult]:
        """The latest results if fresh, else those of a run (the one under way, if any)."""
        return await asyncio.wrap_future(self._fresh_or_running())

    def _fresh_or_running(self) -> Future[list[CheckResult]]:
        with self._lock:
            if self._latest is not None and time.monotonic() - self._latest[0] < self._cache_s:
                done: Future[list[CheckResult]] = Future()
                done.set_result(self._latest[1])
                return done
            if self._running is None:
                self._running = self._runner.submit(self._run)
            return self._running

    def _run(self) -> list[CheckResult]:
        results: list[CheckResult] | None = None
        try:
            results = self.check()
            return results
        finally:
            with self._lock:  # fresh results and no run under way, at the same moment
                self._running = None
                if results is not None:
                    self.runs += 1
                    self._latest = (time.monotonic(), results)

    def check(self) -> list[CheckResult]:
        """Every check's result, Redis first, then the databases by name."""
        checks: dict[str, Callable[[], str | tuple[str, str | None]]] = {"redis": self._redis}
        for name in sorted(self._databases):
            checks[f"database:{name}"] = partial(self._database, name)
        pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readiness")
        try:
            futures = {name: pool.submit(run) for name, run in checks.items()}
            return [self._outcome(name, future) for name, future in futures.items()]
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _outcome(self, name: str, future: Any) -> CheckResult:
        try:
            detail, warning = _split(future.result(timeout=self._timeout_s + 1))
            if warning:
                log.warning("readiness: %s: %s", name, warning)
            return CheckResult(name, True, detail, warning)
        except FutureTimeout:
            return CheckResult(name, False, f"no answer within {self._timeout_s:g}s")
        except NotReady as exc:
            return CheckResult(name, False, str(exc))
        except Exception as exc:
            return CheckResult(name, False, f"unreachable ({type(exc).__name__})")

    def _redis(self) -> str | tuple[str, str | None]:
        self._ping_redis()
        if self._redis_warning is None:
            return "reachable"
        return "reachable", self._redis_warning()

    def _database(self, name: str) -> str:
        with self._engine(name).connect() as conn:
            try:
                found = conn.execute(select(_VERSIONS.c.version_num)).scalars()
                revisions = sorted(str(revision) for revision in found)
            except Exception as exc:
                raise NotReady(f"not migrated (no {VERSION_TABLE} table)") from exc
        if revisions != [SCHEMA_REVISION]:
            at = ", ".join(revisions) or "no revision"
            raise NotReady(f"schema at {at}, expected {SCHEMA_REVISION}: run `claimpay db upgrade`")
        return f"reachable, schema {SCHEMA_REVISION}"

    def _engine(self, name: str) -> Engine:
        return self._engines.get(name)

    def dispose(self) -> None:
        self._runner.shutdown(wait=False, cancel_futures=True)
        self._engines.dispose()


def _split(answer: str | tuple[str, str | None]) -> tuple[str, str | None]:
    return answer if isinstance(answer, tuple) else (answer, None)


_VERSIONS = table(VERSION_TABLE, column("version_num"))


class NotReady(ClaimpayError):
    """Raised by a check that reached its dependency and found it unfit."""


def _probe_engine(url: str, timeout_s: float) -> Engine:
    """A reader for the checks: small pool, everything bounded by `timeout_s`; a SQLite
    file that does not exist is not created but reported."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        on_disk = database and database != ":memory:" and not database.startswith("file:")
        if on_disk and not Path(database).is_file():
            raise NotReady("database file missing: run `claimpay db upgrade`")
    bounds = DbLimits(
        statement_timeout_s=timeout_s,
        idle_in_transaction_timeout_s=0,
        tcp_user_timeout_s=0,
        keepalives_idle_s=0,
        connect_timeout_s=max(2, round(timeout_s)),
    )
    return make_engine(url, bounds, pool_size=1, max_overflow=1, writer=False)
