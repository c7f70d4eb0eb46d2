"""PostgreSQL: one `INSERT ... SELECT ... ON CONFLICT DO UPDATE ... RETURNING` per wave,
its rows sent as one JSON parameter and expanded by `json_to_recordset` on the server.

One round trip per wave, no staging table and no join for the planner to get wrong.
Date-times arrive as sent (with their offset) and are converted to naive UTC in SQL.
A JSON array costs the worker one `orjson.dumps` call instead of formatting every row for
COPY (per 100,000 rows: 0.04 CPU-s instead of 0.21, for 0.27 instead of 0.19 on the
server). `RETURNING (xmax = 0)` tells the rows the statement inserted (xmax unset) from
those it updated (xmax holds the updating transaction).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter, methodcaller
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from worker.upsert.fields import KEEP_ON_UPDATE, Defaults, utc_columns


def upsert_json(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    defaults: Defaults,
) -> list[bool]:
    """Apply one wave (unique keys); True for each row that was created.

    An update keeps the stored `KEEP_ON_UPDATE` columns a row did not send, so the rows
    are grouped by which of them they sent: one statement per group (most waves have one).
    """
    groups = _groups(rows)
    raw = conn.connection.driver_connection
    assert raw is not None
    params = {f"d_{name}": value for name, value in defaults.columns().items()}
    created: dict[Any, bool] = {}
    for sent, group in groups.items():
        sql = _statement(table, key_column, sent)
        try:
            with raw.cursor() as cursor:
                rows_json = orjson.dumps(group, option=orjson.OPT_NAIVE_UTC).decode()
                cursor.execute(sql, {**params, "rows": rows_json})
                created.update(cursor.fetchall())
        except psycopg.Error as exc:
            # The raw cursor bypasses SQLAlchemy: give callers SQLAlchemy's error classes
            # (IntegrityError, DataError, OperationalError, ...) as for any other statement.
            raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc
    return list(map(created.__getitem__, map(itemgetter(key_column), rows)))


def _groups(rows: Sequence[dict[str, Any]]) -> dict[frozenset[str], Sequence[dict[str, Any]]]:
    """The rows by which `KEEP_ON_UPDATE` columns they sent. Most waves send each of them
    in every row or in none: told apart at C speed, without a Python step per row."""
    sent_by_all: list[str] = []
    for name in KEEP_ON_UPDATE:
        values = list(map(methodcaller("get", name), rows))
        if values.count(None) == len(values):
            continue
        if None in values:
            break  # some rows sent it, some did not: grouped row by row
        sent_by_all.append(name)
    else:
        return {frozenset(sent_by_all): rows}
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        sent = frozenset(name for name in KEEP_ON_UPDATE if row.get(name) is not None)
        groups.setdefault(sent, []).append(row)
    return dict(groups)


@lru_cache(maxsize=128)
def _statement(table: Table, key_column: str, sent: frozenset[str]) -> str:
    """The wave's statement for rows that sent the `KEEP_ON_UPDATE` columns in `sent`."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    q = dialect.identifier_preparer.quote
    names = [column.name for column in table.columns]
    # Unsized types: the record accepts anything and the assignment to the real column
    # rejects an over-long value (a cast to varchar(n) would truncate it silently).
    types = {c.name: _unsized(c.type.compile(dialect)) for c in table.columns}
    # A date-time sent with an offset is stored as naive UTC: every one reaches the
    # statement with its offset (naive ones as UTC, `OPT_NAIVE_UTC`), is read as
    # `timestamptz` and converted here, whatever the session's time zone.
    utc = set(utc_columns(table))
    types.update((name, "timestamptz") for name in utc)
    record = ", ".join(f"{q(n)} {types[n]}" for n in names)
    target, key = q(table.name), q(key_column)
    cols = ", ".join(q(n) for n in names)
    values = {n: f"(s.{q(n)} AT TIME ZONE 'UTC')" if n in utc else f"s.{q(n)}" for n in names}
    picks = ", ".join(
        f"COALESCE({values[n]}, %(d_{n})s)" if n in Defaults.COLUMNS else values[n] for n in names
    )
    sets = ", ".join(
        f"{q(n)} = EXCLUDED.{q(n)}"
        for n in names
        if n != key_column and (n not in KEEP_ON_UPDATE or n in sent)
    )
    return f"""
INSERT INTO {target} AS t ({cols})
SELECT {picks} FROM json_to_recordset(%(rows)s::json) AS s({record})
ON CONFLICT ({key}) DO UPDATE SET {sets}
RETURNING t.{key}, (t.xmax = 0)
"""  # noqa: S608 - identifiers come from the table definition, values are bound


def _unsized(sql_type: str) -> str:
    """The type without its size: `VARCHAR(20)` reads as `VARCHAR`; but `CHAR` alone means
    `CHAR(1)`, so a sized CHAR reads as `TEXT`."""
    base = re.sub(r"[(][^)]*[)]", "", sql_type).strip()
    return "TEXT" if base.upper() in ("CHAR", "CHARACTER", "NCHAR") else base
