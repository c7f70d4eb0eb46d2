"""SQLAlchemy engines: one per database per worker process, created after fork.

`hide_parameters`: an error never quotes row values (its text may reach a log or a result).
On PostgreSQL every connection also bounds what a lost host can leave behind (`DbLimits`):
the server ends a transaction left idle (and frees its row locks), and TCP keepalives plus
`tcp_user_timeout` end a connection whose peer vanished, on both sides.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from worker.errors import UnknownDatabase

log = logging.getLogger("claimpay.worker")

CONNECT_TIMEOUT_S = 10
"""A PostgreSQL connect that hangs must not hold a worker slot for long."""


@dataclass(frozen=True, slots=True)
class DbLimits:
    """Time bounds of a worker's database connections (settings `CLAIMPAY_DB_*`); 0 = off.

    The server-side ones are session settings, the TCP ones libpq connect arguments; only
    PostgreSQL uses them (SQLite is a file: there is no peer to lose)."""

    statement_timeout_s: int = 300
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

    def session_options(self) -> str:
        """The libpq `options` string: server settings of every session."""
        settings = {
            "statement_timeout": self.statement_timeout_s * 1000,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout_s * 1000,
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items())

    def connect_args(self) -> dict[str, Any]:
        """libpq connect arguments for PostgreSQL (`connect_timeout`, keepalives, ...)."""
        args: dict[str, Any] = {
            "options": self.session_options(),
            "connect_timeout": CONNECT_TIMEOUT_S,
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


def make_engine(url: str, statement_timeout_s: int = 300, limits: DbLimits | None = None) -> Engine:
    """An engine tuned for chunked upserts on SQLite (WAL, busy timeout) or PostgreSQL.

    `limits` (default: `DbLimits(statement_timeout_s)`) bound a PostgreSQL connection's
    statements, idle transactions and silent peers."""
    limits = limits or DbLimits(statement_timeout_s=statement_timeout_s)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, limits.statement_timeout_s)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = limits.connect_args()
    engine = create_engine(
        url, pool_pre_ping=True, pool_size=2, connect_args=connect_args, hide_parameters=True
    )
    track_checkouts(engine)
    return engine


_in_use: dict[int, Any] = {}
"""This process's database connections checked out of a pool now (by pool record)."""
_in_use_lock = threading.Lock()
CANCEL_TIMEOUT_S = 5.0


def track_checkouts(engine: Engine) -> None:
    """Keep `cancel_in_use` aware of the connections `engine` lends out."""

    # Keyed by the pool's record: an invalidated connection checks in as None.
    @event.listens_for(engine, "checkout")
    def _out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        with _in_use_lock:
            _in_use[id(record)] = dbapi_connection

    @event.listens_for(engine, "checkin")
    def _in(_dbapi_connection: Any, record: Any) -> None:
        with _in_use_lock:
            _in_use.pop(id(record), None)


def cancel_in_use() -> int:
    """Ask the server to cancel whatever this process's checked-out connections run (a
    stuck chunk: a pool process runs one at a time); returns how many were asked. Safe
    from another thread: psycopg's `cancel_safe` opens its own connection (bounded), and
    SQLite's `interrupt` only sets a flag."""
    with _in_use_lock:
        connections = list(_in_use.values())
    for connection in connections:
        try:
            if hasattr(connection, "cancel_safe"):
                connection.cancel_safe(timeout=CANCEL_TIMEOUT_S)
            elif hasattr(connection, "interrupt"):
                connection.interrupt()
        except Exception as exc:  # the server may be out of reach too: the lease still lapses
            log.warning("cancelling a stuck database call failed (%s)", type(exc).__name__)
    return len(connections)


def _sqlite_engine(url: str, database: str | None, busy_timeout_s: int) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s}, hide_parameters=True)
    track_checkouts(engine)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; manage BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_s * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Take the write lock up front: two workers never deadlock upgrading a read lock.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class EngineRegistry:
    """Engines by database name, created lazily and never shared across a fork."""

    def __init__(
        self, urls: dict[str, str], statement_timeout_s: int = 300, limits: DbLimits | None = None
    ) -> None:
        self._urls = urls
        self._limits = limits or DbLimits(statement_timeout_s=statement_timeout_s)
        self._engines: dict[str, Engine] = {}
        self._pid = os.getpid()

    def get(self, database: str) -> Engine:
        if self._pid != os.getpid():
            self._engines = {}
            self._pid = os.getpid()
        engine = self._engines.get(database)
        if engine is None:
            try:
                url = self._urls[database]
            except KeyError:
                raise UnknownDatabase(database) from None
            engine = self._engines[database] = make_engine(url, limits=self._limits)
        return engine

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines = {}
