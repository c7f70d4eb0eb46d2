"""Dialect-specific set-based statements. Each applies one wave (unique keys) and returns,
aligned with the rows, whether each row was created (True) or updated (False).

Columns in `KEEP_ON_UPDATE` hold None when the row did not send them: an insert takes the
value from `inserts`, an update keeps the stored one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, select

from worker.upsert.fields import KEEP_ON_UPDATE
from worker.upsert.postgres import upsert_copy

Strategy = Callable[[Connection, Table, str, Sequence[dict[str, Any]], dict[str, Any]], list[bool]]


def strategy_for(dialect: str) -> Strategy:
    """The fastest exact strategy for a dialect; the portable one for all others."""
    if dialect == "postgresql":
        return upsert_copy
    return upsert_portable


def upsert_portable(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    inserts: dict[str, Any],
) -> list[bool]:
    """Read the wave's existing keys in one query, then one executemany UPDATE and one
    executemany INSERT. Exact inside the chunk's transaction (SQLite: `BEGIN IMMEDIATE`)."""
    key = table.c[key_column]
    keys = [row[key_column] for row in rows]
    existing: set[Any] = set()
    for start in range(0, len(keys), 10_000):
        part = keys[start : start + 10_000]
        existing.update(conn.execute(select(key).where(key.in_(part))).scalars())
    updates = [row for row in rows if row[key_column] in existing]
    creates = [row for row in rows if row[key_column] not in existing]
    if updates:
        conn.execute(
            _portable_update(table, key_column), [_bind(row, key_column) for row in updates]
        )
    if creates:
        conn.execute(table.insert(), [_with_inserts(row, inserts) for row in creates])
    return [row[key_column] not in existing for row in rows]


def _with_inserts(row: dict[str, Any], inserts: dict[str, Any]) -> dict[str, Any]:
    filled = dict(row)
    for column in KEEP_ON_UPDATE:
        if filled.get(column) is None:
            filled[column] = inserts[column]
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
