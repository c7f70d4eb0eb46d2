"""Dialect-specific set-based statements. Each applies one wave (unique keys) and returns,
aligned with the rows, whether each row was created (True) or updated (False).

Rows hold None in the audit columns they did not send: a strategy fills them from
`Defaults`, except that an update keeps the stored `KEEP_ON_UPDATE` columns. Date-times
hold the offset they were sent with: a strategy stores them as naive UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import compress
from operator import itemgetter, methodcaller, not_
from typing import Any

from sqlalchemy import Connection, Dialect, Table, bindparam, func, select

from claimpay.entities.base import as_naive_utc
from worker.upsert.fields import KEEP_ON_UPDATE, Defaults, utc_columns
from worker.upsert.postgres import upsert_json

Strategy = Callable[[Connection, Table, str, Sequence[dict[str, Any]], Defaults], list[bool]]


def strategy_for(dialect: str) -> Strategy:
    """The fastest exact strategy for a dialect; the portable one for all others."""
    if dialect == "postgresql":
        return upsert_json
    if dialect == "sqlite":
        return upsert_sqlite
    return upsert_portable


def upsert_portable(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    defaults: Defaults,
) -> list[bool]:
    """Read the wave's existing keys in one query, then one executemany UPDATE and one
    executemany INSERT. Exact inside the chunk's transaction (SQLite: `BEGIN IMMEDIATE`)."""
    rows, existing = _filled(conn, table, key_column, rows, defaults)
    updates = [row for row in rows if row[key_column] in existing]
    creates = [row for row in rows if row[key_column] not in existing]
    if updates:
        conn.execute(
            _portable_update(table, key_column), [_bind(row, key_column) for row in updates]
        )
    if creates:
        conn.execute(table.insert(), [_fill_inserts(row, defaults) for row in creates])
    return [row[key_column] not in existing for row in rows]


def upsert_sqlite(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    defaults: Defaults,
) -> list[bool]:
    """`upsert_portable`, its statements run as plain SQL with values bound a column at a
    time (`_PlainStatements.columns`): SQLAlchemy's per-row parameter building and its
    per-value bind processors were about half the worker's CPU on SQLite, and the query
    of the stored keys (an `IN` of a parameter per row) was compiled anew per chunk."""
    plain = _sqlite_statements(table, key_column, conn.dialect)
    keys = list(map(itemgetter(key_column), rows))
    existing: set[Any] = set()
    for part in _key_batches(keys):
        existing.update(conn.exec_driver_sql(plain.stored_keys(len(part)), tuple(part)).scalars())
    is_new = [key not in existing for key in keys]
    values = plain.columns(rows, defaults)
    if not all(is_new):
        updated = compress(_rows_of(values, plain.update_columns), map(not_, is_new))
        conn.exec_driver_sql(plain.update, list(updated))
    if any(is_new):
        # A created row gets the create's audit columns it did not send (an update keeps
        # the stored ones: its statement reads None as "keep").
        _fill(values, "entry_date", _date_text(defaults.now))
        _fill(values, "entry_user", defaults.entry_user)
        created = compress(_rows_of(values, plain.insert_columns), is_new)
        conn.exec_driver_sql(plain.insert, list(created))
    return is_new


_KEYS_PER_QUERY = 10_000
"""Keys per query of the stored ones (SQLite allows 32,766 parameters a statement)."""


def _key_batches(keys: list[Any]) -> Iterator[list[Any]]:
    """`keys` in slices of at most `_KEYS_PER_QUERY`, one query each."""
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        yield keys[start : start + _KEYS_PER_QUERY]


def _fill(values: dict[str, list[Any]], name: str, default: Any) -> None:
    """Column `name`'s values, `default` where a row left it out (None)."""
    values[name] = [default if value is None else value for value in values[name]]


def _rows_of(values: dict[str, list[Any]], columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """The rows' values of `columns`, a tuple per row (zipped at C speed)."""
    return zip(*(values[name] for name in columns), strict=True)


def _filled(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    defaults: Defaults,
) -> tuple[list[dict[str, Any]], set[Any]]:
    """Every column of each row (dates as naive UTC, the update audit columns filled), and
    which of their keys the table holds already (one query per `_KEYS_PER_QUERY` keys)."""
    blank = dict.fromkeys(table.c.keys())  # a row may leave out the columns it did not send
    dates = utc_columns(table)
    filled = [_fill_updates(_naive_utc(blank | row, dates), defaults) for row in rows]
    keys = [row[key_column] for row in filled]
    key = table.c[key_column]
    existing: set[Any] = set()
    for part in _key_batches(keys):
        existing.update(conn.execute(select(key).where(key.in_(part))).scalars())
    return filled, existing


@dataclass(frozen=True)
class _PlainStatements:
    """A table's UPDATE and INSERT as plain SQL with `?` markers, the columns each binds in
    order, how its values are bound (`columns`), and the query of its stored keys."""

    table: str
    key_column: str
    update: str
    update_columns: tuple[str, ...]
    insert: str
    insert_columns: tuple[str, ...]
    dates: tuple[str, ...]
    """Date-time columns: bound as SQLAlchemy's text form of their naive UTC value."""
    processors: dict[str, Callable[[Any], Any]]
    """Bind processors of the other columns that have one (booleans)."""

    def columns(self, rows: Sequence[dict[str, Any]], defaults: Defaults) -> dict[str, list[Any]]:
        """Every column's values, a list per column aligned with `rows` (a column a row
        left out is None), bound as SQLAlchemy would bind them, and `update_date` and
        `update_user` filled from `defaults`."""
        values = {name: list(map(methodcaller("get", name), rows)) for name in self.insert_columns}
        for name in self.dates:
            values[name] = list(map(_date_text, values[name]))
        for name, convert in self.processors.items():
            values[name] = [None if value is None else convert(value) for value in values[name]]
        _fill(values, "update_date", _date_text(defaults.now))
        _fill(values, "update_user", defaults.update_user)
        return values

    def stored_keys(self, count: int) -> str:
        """The query of which of `count` keys (bound in order) the table holds."""
        markers = ", ".join("?" * count)
        return f"SELECT {self.key_column} FROM {self.table} WHERE {self.key_column} IN ({markers})"  # noqa: S608


def _date_text(value: datetime | None) -> str | None:
    """A date-time as SQLAlchemy's SQLite dialect stores it (`YYYY-MM-DD HH:MM:SS.ffffff`,
    microseconds always written) in naive UTC; None stays None. One C call for a naive
    value instead of SQLAlchemy's processor (a `%` format of a dict per value)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]  # less its "+00:00"


_PROBE_DATE = datetime(9, 8, 7, 6, 5, 4, 3)


@lru_cache(maxsize=32)
def _sqlite_statements(table: Table, key_column: str, dialect: Dialect) -> _PlainStatements:
    quote = dialect.identifier_preparer.quote
    names = [column.name for column in table.columns]
    others = [name for name in names if name != key_column]
    sets = ", ".join(
        f"{quote(n)} = COALESCE(?, {quote(n)})" if n in KEEP_ON_UPDATE else f"{quote(n)} = ?"
        for n in others
    )
    target = quote(table.name)
    dates = utc_columns(table)
    processors: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        # The dialect's own type (SQLite's DATETIME) binds; the generic one would not.
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        if column.name in dates:
            if processor is None or processor(_PROBE_DATE) != _date_text(_PROBE_DATE):
                raise TypeError(f"{table.name}.{column.name} is not stored in SQLAlchemy's form")
        elif processor is not None:
            processors[column.name] = processor
    return _PlainStatements(
        table=target,
        key_column=quote(key_column),
        update=f"UPDATE {target} SET {sets} WHERE {quote(key_column)} = ?",  # noqa: S608
        update_columns=(*others, key_column),
        insert=f"INSERT INTO {target} ({', '.join(map(quote, names))}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(names))})",
        insert_columns=tuple(names),
        dates=dates,
        processors=processors,
    )


def _naive_utc(row: dict[str, Any], dates: tuple[str, ...]) -> dict[str, Any]:
    """The row with its date-times as naive UTC (validation keeps the offset sent)."""
    for name in dates:
        value = row[name]
        if value is not None and value.tzinfo is not None:
            row[name] = as_naive_utc(value)
    return row


def _fill_updates(filled: dict[str, Any], defaults: Defaults) -> dict[str, Any]:
    if filled.get("update_date") is None:
        filled["update_date"] = defaults.now
    if filled.get("update_user") is None:
        filled["update_user"] = defaults.update_user
    return filled


def _fill_inserts(filled: dict[str, Any], defaults: Defaults) -> dict[str, Any]:
    """`filled` (a row of `_filled`, owned by the strategy) with the create's audit
    columns, in place."""
    if filled.get("entry_date") is None:
        filled["entry_date"] = defaults.now
    if filled.get("entry_user") is None:
        filled["entry_user"] = defaults.entry_user
    return filled


@lru_cache(maxsize=32)
def _portable_update(table: Table, key_column: str) -> Any:
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.name == key_column:
            continue
        param = bindparam(f"v_{column.name}", type_=column.type)
        keep = column.name in KEEP_ON_UPDATE
        values[column.name] = func.coalesce(param, column) if keep else param
    return table.update().where(table.c[key_column] == bindparam("v_key")).values(values)


def _bind(row: dict[str, Any], key_column: str) -> dict[str, Any]:
    bound = {f"v_{name}": value for name, value in row.items() if name != key_column}
    bound["v_key"] = row[key_column]
    return bound
