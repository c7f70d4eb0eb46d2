"""Dialect-specific set-based statements. Each applies one wave (unique keys) and returns,
aligned with the rows, whether each row was created (True) or updated (False).

Columns in `KEEP_ON_UPDATE` hold None when the row did not send them: an insert takes the
value from `inserts`, an update keeps the stored one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, select, text
from sqlalchemy.dialects import postgresql

KEEP_ON_UPDATE = ("entry_date", "entry_user")

Strategy = Callable[[Connection, Table, str, Sequence[dict[str, Any]], dict[str, Any]], list[bool]]


def strategy_for(dialect: str) -> Strategy:
    """The fastest exact strategy for a dialect; the portable one for all others."""
    return {"postgresql": upsert_unnest}.get(dialect, upsert_portable)


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
        values[column.name] = (
            func.coalesce(param, column) if column.name in KEEP_ON_UPDATE else param
        )
    return table.update().where(table.c[key_column] == bindparam("v_key")).values(values)


def _bind(row: dict[str, Any], key_column: str) -> dict[str, Any]:
    bound = {f"v_{name}": value for name, value in row.items() if name != key_column}
    bound["v_key"] = row[key_column]
    return bound


def upsert_unnest(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    inserts: dict[str, Any],
) -> list[bool]:
    """PostgreSQL: one statement with one array parameter per column (`unnest`): an UPDATE
    of the existing keys and an INSERT of the rest, each telling which rows it touched."""
    params: dict[str, Any] = {
        f"a_{column.name}": [row[column.name] for row in rows] for column in table.columns
    }
    params.update({f"d_{name}": value for name, value in inserts.items()})
    created_keys: dict[Any, bool] = dict(conn.execute(_unnest_sql(table, key_column), params).all())
    return [created_keys[row[key_column]] for row in rows]


@lru_cache(maxsize=32)
def _unnest_sql(table: Table, key_column: str) -> Any:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    names = [column.name for column in table.columns]
    # Cast to unsized types: a cast to varchar(n) would truncate silently, while the
    # assignment to the column rejects an over-long value, as it should.
    arrays = ", ".join(
        f"CAST(:a_{column.name} AS {re.sub(r'[(][^)]*[)]', '', column.type.compile(dialect))}[])"
        for column in table.columns
    )
    q = dialect.identifier_preparer.quote
    target, key = q(table.name), q(key_column)
    cols = ", ".join(q(n) for n in names)
    sets = ", ".join(
        f"{q(n)} = COALESCE(s.{q(n)}, t.{q(n)})" if n in KEEP_ON_UPDATE else f"{q(n)} = s.{q(n)}"
        for n in names
        if n != key_column
    )
    picks = ", ".join(
        f"COALESCE(s.{q(n)}, :d_{n})" if n in KEEP_ON_UPDATE else f"s.{q(n)}" for n in names
    )
    conflict_sets = ", ".join(f"{q(n)} = EXCLUDED.{q(n)}" for n in names if n != key_column)
    sql = f"""
WITH s AS (SELECT * FROM unnest({arrays}) AS s({cols})),
upd AS (
  UPDATE {target} AS t SET {sets} FROM s WHERE t.{key} = s.{key} RETURNING t.{key}
),
ins AS (
  INSERT INTO {target} ({cols})
  SELECT {picks} FROM s WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.{key} = s.{key})
  ON CONFLICT ({key}) DO UPDATE SET {conflict_sets}
  RETURNING {target}.{key}, (xmax = 0)
)
SELECT {key}, false FROM upd UNION ALL SELECT * FROM ins
"""  # noqa: S608 - identifiers come from the table definition, values are bound
    return text(sql)
