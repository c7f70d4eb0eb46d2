"""Dialect-specific set-based statements. Each applies one wave (unique keys) and returns,
aligned with the rows, whether each row was created (True) or updated (False).

Rows hold None in the audit columns they did not send: a strategy fills them from
`Defaults`, except that an update keeps the stored `KEEP_ON_UPDATE` columns. Date-times
hold the offset they were sent with: a strategy stores them as naive UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
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
    """`upsert_portable`, its two executemany statements run as plain SQL: values are
    bound as SQLAlchemy would bind them (its bind processors, one call per date), without
    its per-row parameter building, which was about half the worker's CPU on SQLite."""
    plain = _sqlite_statements(table, key_column, conn.dialect)
    rows, existing = _filled(conn, table, key_column, rows, defaults)
    is_new = [row[key_column] not in existing for row in rows]
    updates = [row for row, new in zip(rows, is_new, strict=True) if not new]
    creates = [_fill_inserts(row, defaults) for row, new in zip(rows, is_new, strict=True) if new]
    if updates:
        conn.exec_driver_sql(plain.update, plain.bound(updates, plain.update_columns))
    if creates:
        conn.exec_driver_sql(plain.insert, plain.bound(creates, plain.insert_columns))
    return is_new


def _filled(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    defaults: Defaults,
) -> tuple[list[dict[str, Any]], set[Any]]:
    """Every column of each row (dates as naive UTC, the update audit columns filled), and
    which of their keys the table holds already (one query per 10,000 keys)."""
    blank = dict.fromkeys(table.c.keys())  # a row may leave out the columns it did not send
    dates = utc_columns(table)
    filled = [_fill_updates(_naive_utc(blank | row, dates), defaults) for row in rows]
    keys = [row[key_column] for row in filled]
    key = table.c[key_column]
    existing: set[Any] = set()
    for start in range(0, len(keys), 10_000):
        part = keys[start : start + 10_000]
        existing.update(conn.execute(select(key).where(key.in_(part))).scalars())
    return filled, existing


@dataclass(frozen=True)
class _PlainStatements:
    """A table's UPDATE and INSERT as plain SQL with `?` markers, the columns each binds in
    order, and the bind processors of the columns that have one (dates, booleans)."""

    update: str
    update_columns: tuple[str, ...]
    insert: str
    insert_columns: tuple[str, ...]
    processors: dict[str, Callable[[Any], Any]]

    def bound(self, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
        # `itemgetter` of one name returns the bare value, of several a tuple.
        get = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
        values = list(map(get, rows))
        converters = [self.processors.get(name) for name in columns]
        if not any(converters):
            return values
        return [
            tuple(
                v if f is None or v is None else f(v) for f, v in zip(converters, row, strict=True)
            )
            for row in values
        ]


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
    processors: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        # The dialect's own type (SQLite's DATETIME) binds; the generic one would not.
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[column.name] = processor
    return _PlainStatements(
        update=f"UPDATE {target} SET {sets} WHERE {quote(key_column)} = ?",  # noqa: S608
        update_columns=(*others, key_column),
        insert=f"INSERT INTO {target} ({', '.join(map(quote, names))}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(names))})",
        insert_columns=tuple(names),
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
