"""PostgreSQL: COPY the wave into a session-private staging table, then one statement
updates the existing keys and inserts the rest, saying which rows each touched.

COPY avoids both per-row round trips and psycopg's re-parsing of huge statements; it is
the bulk-load limit measured in `bench/`. Everything runs inside the caller's transaction
(and savepoint), so a failed wave leaves nothing behind.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from worker.upsert.fields import KEEP_ON_UPDATE


def upsert_copy(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[dict[str, Any]],
    inserts: dict[str, Any],
) -> list[bool]:
    """Apply one wave (unique keys); True for each row that was created."""
    sql = _statements(table, key_column)
    names = [column.name for column in table.columns]
    raw = conn.connection.driver_connection
    assert raw is not None
    try:
        with raw.cursor() as cursor:
            cursor.execute(sql.prepare)
            with cursor.copy(sql.copy) as copy:
                for row in rows:
                    copy.write_row([row[name] for name in names])
            cursor.execute(sql.merge, {f"d_{name}": value for name, value in inserts.items()})
            created = dict(cursor.fetchall())
    except psycopg.Error as exc:
        # The raw cursor bypasses SQLAlchemy: give callers SQLAlchemy's error classes
        # (IntegrityError, DataError, OperationalError, ...) as for any other statement.
        raise DBAPIError.instance(sql.merge, None, exc, psycopg.Error) from exc
    return [created[row[key_column]] for row in rows]


class _Statements:
    def __init__(self, prepare: str, copy: str, merge: str) -> None:
        self.prepare = prepare
        self.copy = copy
        self.merge = merge


@lru_cache(maxsize=32)
def _statements(table: Table, key_column: str) -> _Statements:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    q = dialect.identifier_preparer.quote
    names = [column.name for column in table.columns]
    stage = q(f"claimpay_stage_{table.name}")
    target, key = q(table.name), q(key_column)
    # Unsized types: the stage accepts anything and the assignment to the real column
    # rejects an over-long value (a cast to varchar(n) would truncate it silently).
    columns = ", ".join(
        f"{q(c.name)} {re.sub(r'[(][^)]*[)]', '', c.type.compile(dialect))}" for c in table.columns
    )
    cols = ", ".join(q(n) for n in names)
    sets = ", ".join(
        f"{q(n)} = COALESCE(s.{q(n)}, t.{q(n)})" if n in KEEP_ON_UPDATE else f"{q(n)} = s.{q(n)}"
        for n in names
        if n != key_column
    )
    picks = ", ".join(
        f"COALESCE(s.{q(n)}, %(d_{n})s)" if n in KEEP_ON_UPDATE else f"s.{q(n)}" for n in names
    )
    # A conflict means another transaction inserted the key after our snapshot (rare): the
    # entry fields then keep the stored value unless the row sent one.
    staged = f"SELECT c.{{0}} FROM {stage} AS c WHERE c.{key} = EXCLUDED.{key}"  # noqa: S608
    conflict_sets = ", ".join(
        f"{q(n)} = COALESCE(({staged.format(q(n))}), {target}.{q(n)})"
        if n in KEEP_ON_UPDATE
        else f"{q(n)} = EXCLUDED.{q(n)}"
        for n in names
        if n != key_column
    )
    # Both sub-statements see the table as it was before the statement: the UPDATE takes
    # the keys that existed, the INSERT the others (ON CONFLICT covers a concurrent insert).
    merge = f"""
WITH upd AS (
  UPDATE {target} AS t SET {sets} FROM {stage} AS s WHERE t.{key} = s.{key} RETURNING t.{key}
),
ins AS (
  INSERT INTO {target} ({cols})
  SELECT {picks} FROM {stage} AS s
  WHERE NOT EXISTS (SELECT 1 FROM {target} AS e WHERE e.{key} = s.{key})
  ON CONFLICT ({key}) DO UPDATE SET {conflict_sets}
  RETURNING {target}.{key}, (xmax = 0)
)
SELECT {key}, false FROM upd UNION ALL SELECT * FROM ins
"""  # noqa: S608 - identifiers come from the table definition, values are bound
    # One round trip: the stage (once per session), emptied for this wave, and index
    # lookups per staged row. The stage has no statistics, so the planner would otherwise
    # hash the whole target table: O(table) per chunk instead of O(chunk).
    prepare = "; ".join(
        (
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({columns}) ON COMMIT DELETE ROWS",
            f"TRUNCATE {stage}",
            "SET LOCAL enable_hashjoin = off",
            "SET LOCAL enable_mergejoin = off",
        )
    )
    return _Statements(prepare=prepare, copy=f"COPY {stage} ({cols}) FROM STDIN", merge=merge)
