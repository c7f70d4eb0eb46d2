"""What can go wrong while applying a chunk, as types. Only `TransientError` is retried."""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

from claimpay.errors import ClaimpayError


class WorkerError(ClaimpayError):
    """Raised when applying a chunk or delivering a job's webhook fails."""


class TransientError(WorkerError):
    """Raised when the database is unreachable, busy or lost a race (connection lost,
    deadlock, serialization failure, lock or statement timeout): the chunk is retried."""


class UnknownDatabase(WorkerError):
    """Raised when a job names a database that this worker has no URL for."""


_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open")


def is_transient(exc: BaseException) -> bool:
    """True for faults that may pass if the same chunk is tried again later."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError) and isinstance(exc.orig, sqlite3.Error):
        # SQLite reports "no such table" (not migrated) as an OperationalError too.
        return any(word in str(exc.orig).lower() for word in _SQLITE_TRANSIENT)
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


def is_row_rejection(exc: BaseException) -> bool:
    """True when the database refused the values (constraint, range, type): a row's fault."""
    return isinstance(exc, sa_exc.IntegrityError | sa_exc.DataError)
