"""SQLAlchemy engines: one per database per worker process, created after fork.

`hide_parameters`: an error never quotes row values (its text may reach a log or a result).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from worker.errors import UnknownDatabase

CONNECT_TIMEOUT_S = 10
"""A PostgreSQL connect that hangs must not hold a worker slot for long."""


def make_engine(url: str, statement_timeout_s: int = 300) -> Engine:
    """An engine tuned for chunked upserts on SQLite (WAL, busy timeout) or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, statement_timeout_s)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["options"] = f"-c statement_timeout={statement_timeout_s * 1000}"
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    return create_engine(
        url, pool_pre_ping=True, pool_size=2, connect_args=connect_args, hide_parameters=True
    )


def _sqlite_engine(url: str, database: str | None, busy_timeout_s: int) -> Engine:
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
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_s * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Take the write lock up front: two workers never deadlock upgrading a read lock.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class EngineRegistry:
    """Engines by database name, created lazily and never shared across a fork."""

    def __init__(self, urls: dict[str, str], statement_timeout_s: int = 300) -> None:
        self._urls = urls
        self._timeout = statement_timeout_s
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
            engine = self._engines[database] = make_engine(url, self._timeout)
        return engine

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines = {}
