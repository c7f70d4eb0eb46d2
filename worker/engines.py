"""The worker's engines: writers (`claimpay.engines`), one per database per worker
process, created after fork, whose stuck calls `cancel_in_use` can cancel.

On PostgreSQL every connection also bounds what a lost host can leave behind (`DbLimits`):
the server ends a transaction left idle (and frees its row locks), and TCP keepalives plus
`tcp_user_timeout` end a connection whose peer vanished, on both sides.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

from sqlalchemy import Engine, event

from claimpay import engines
from claimpay.engines import DbLimits
from worker.errors import UnknownDatabase

log = logging.getLogger("claimpay.worker")


def make_engine(url: str, statement_timeout_s: int = 300, limits: DbLimits | None = None) -> Engine:
    """A writer (`claimpay.engines.make_engine`) whose checked-out connections
    `cancel_in_use` can reach. `limits` (default: `DbLimits(statement_timeout_s)`) bound a
    PostgreSQL connection's statements, idle transactions and silent peers."""
    engine = engines.make_engine(url, limits or DbLimits(statement_timeout_s=statement_timeout_s))
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


class EngineRegistry(engines.EngineRegistry):
    """The worker's engines by database name (`make_engine`), created lazily and never
    shared across a fork; `UnknownDatabase` for a database this worker has no URL for."""

    def __init__(self, urls: dict[str, str], limits: DbLimits | None = None) -> None:
        super().__init__(urls, partial(make_engine, limits=limits or DbLimits()))

    def get(self, database: str) -> Engine:
        if database not in self._urls:
            raise UnknownDatabase(database)
        return super().get(database)
