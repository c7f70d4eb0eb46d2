"""SQLAlchemy engines: the one factory of the worker's engines (chunked upserts), the
producer's read-back and its readiness probe, and the registry that keeps them.

`hide_parameters`: an error never quotes row values (its text may reach a log or a result).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

CONNECT_TIMEOUT_S = 10
"""A PostgreSQL connect that hangs must not hold a worker slot (or a reader) for long."""


@dataclass(frozen=True, slots=True)
class DbLimits:
    """Time bounds of an engine's connections (the worker's: settings `CLAIMPAY_DB_*`);
    0 = off. The server-side ones are session settings, the TCP ones libpq connect
    arguments; only PostgreSQL uses them but the statement timeout, which on SQLite is
    how long to wait for a lock (SQLite is a file: there is no peer to lose)."""

    statement_timeout_s: float = 300
    idle_in_transaction_timeout_s: int = 15
    """PostgreSQL ends a session idle in a transaction this long (its locks go with it)."""
    tcp_user_timeout_s: int = 15
    """Data unacknowledged this long ends the connection (libpq `tcp_user_timeout`)."""
    keepalives_idle_s: int = 5
    """An idle connection is probed after this long (libpq `keepalives_idle`)..."""
    keepalives_interval_s: int = 2
    """...every this long (`keepalives_interval`)..."""
    keepalives_count: int = 3
    """...and dropped after this many unanswered probes (`keepalives_count`)."""
    connect_timeout_s: int = CONNECT_TIMEOUT_S

    def session_options(self) -> str:
        """The libpq `options` string: server settings of every session."""
        settings = {
            "statement_timeout": int(self.statement_timeout_s * 1000),
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout_s * 1000,
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items())

    def connect_args(self) -> dict[str, Any]:
        """libpq connect arguments for PostgreSQL (`connect_timeout`, keepalives, ...)."""
        args: dict[str, Any] = {
            "options": self.session_options(),
            "connect_timeout": self.connect_timeout_s,
        }
        if self.keepalives_idle_s:
            args.update(
                keepalives=1,
                keepalives_idle=self.keepalives_idle_s,
                keepalives_interval=self.keepalives_interval_s,
                keepalives_count=self.keepalives_count,
            )
        if self.tcp_user_timeout_s:
            args["tcp_user_timeout"] = self.tcp_user_timeout_s * 1000
        return args


def make_engine(
    url: str,
    limits: DbLimits | None = None,
    *,
    pool_size: int = 2,
    max_overflow: int = 10,
    writer: bool = True,
) -> Engine:
    """An engine on SQLite or PostgreSQL whose connections keep to `limits` (default:
    `DbLimits()`). A `writer` (the worker's) on SQLite runs in WAL mode and takes the write
    lock when a transaction begins; a reader there opens a connection per use, so it never
    holds the file open."""
    limits = limits or DbLimits()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if writer:
            return _sqlite_writer(url, parsed.database, limits.statement_timeout_s)
        timeout = {"timeout": limits.statement_timeout_s}
        return create_engine(url, poolclass=NullPool, connect_args=timeout, hide_parameters=True)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = limits.connect_args()
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args=connect_args,
        hide_parameters=True,
    )


def _sqlite_writer(url: str, database: str | None, busy_timeout_s: float) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; manage BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Take the write lock up front: two workers never deadlock upgrading a read lock.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class EngineRegistry:
    """Engines by database name, built by `build(url)` on first use, shared by threads and
    never across a fork. `KeyError` for a database without a URL."""

    def __init__(self, urls: Mapping[str, str], build: Callable[[str], Engine]) -> None:
        self._urls = dict(urls)
        self._build = build
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self, database: str) -> Engine:
        if self._pid != os.getpid():  # a forked child: the parent's pools (and lock) are not ours
            self._engines = {}
            self._lock = threading.Lock()
            self._pid = os.getpid()
        with self._lock:
            engine = self._engines.get(database)
            if engine is None:
                engine = self._engines[database] = self._build(self._urls[database])
            return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines = {}
