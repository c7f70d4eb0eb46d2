"""Apply validated rows to a table, in input order, with an exact result per row.

Rows are applied in *waves*: wave k holds the k-th occurrence of every key, so a wave never
repeats a key and one set-based statement (per dialect, `strategies`) can apply it and
say which rows it created. Waves run in order, so repeated keys keep last-write-wins.
When the database rejects a wave for a data reason, the wave is bisected under savepoints
until only the offending rows fail; every other row is applied once. Savepoints cost
round trips and subtransactions, so a caller may first try without them
(`isolate=False`): a rejection then raises, and the caller rolls back and tries again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError

from claimpay.envelope import Outcome, RowStatus, outcome
from worker.errors import is_row_rejection
from worker.upsert.fields import Defaults
from worker.upsert.strategies import strategy_for

IndexedRow = tuple[int, dict[str, Any]]

_STATUS = (RowStatus.UPDATED, RowStatus.CREATED)
"""Status by `created` (False, True)."""
_POSITION = attrgetter("position")
_INDEX, _VALUES = itemgetter(0), itemgetter(1)


def upsert_rows(
    conn: Connection,
    table: Table,
    key_column: str,
    rows: Sequence[IndexedRow],
    *,
    user: str,
    now: datetime,
    isolate: bool = True,
) -> list[Outcome]:
    """Apply `(input index, column values)` rows; returns their outcomes in input order.

    Absent `update_date`/`update_user` are filled with `now`/`user`; a created row gets
    `entry_date`/`entry_user` from the row or else `now`/`user`, while an updated row keeps
    its stored ones unless the row sends them. With `isolate=False`, a row the database
    rejects raises its `DBAPIError` instead of getting a 422, and the transaction is lost.
    """
    strategy = strategy_for(conn.dialect.name)
    defaults = Defaults(now, _fit(table, "entry_user", user), _fit(table, "update_user", user))

    key_of = itemgetter(key_column)

    def apply(wave: list[IndexedRow]) -> list[Outcome]:
        rows = list(map(_VALUES, wave))
        created = strategy(conn, table, key_column, rows, defaults)
        if len(created) != len(wave):
            raise RuntimeError(f"{len(created)} results for {len(wave)} rows")
        # Both statuses have a standard body (None). Built at C speed (`tuple.__new__` of
        # the fields, as `Outcome._make` does without its Python call): this runs per row.
        fields = zip(
            map(_INDEX, wave), map(_STATUS.__getitem__, created), repeat(None), map(key_of, rows)
        )
        return list(map(tuple.__new__, repeat(Outcome), fields))

    def apply_isolating(wave: list[IndexedRow]) -> list[Outcome]:
        try:
            with conn.begin_nested():
                return apply(wave)
        except DBAPIError as exc:
            if not is_row_rejection(exc):
                raise
            if len(wave) == 1:
                index, values = wave[0]
                return [outcome(index, RowStatus.REJECTED, values[key_column], _rejection(exc))]
            middle = len(wave) // 2
            return apply_isolating(wave[:middle]) + apply_isolating(wave[middle:])

    outcomes: list[Outcome] = []
    for wave in waves(rows, key_column):
        outcomes.extend(apply_isolating(wave) if isolate else apply(wave))
    outcomes.sort(key=_POSITION)  # a chunk's rows are mostly in order already: O(n) then
    return outcomes


def waves(rows: Sequence[IndexedRow], key_column: str) -> list[list[IndexedRow]]:
    """Split rows so wave k holds each key's k-th occurrence, input order kept within."""
    if len(set(map(itemgetter(key_column), map(_VALUES, rows)))) == len(rows):
        return [list(rows)] if rows else []  # every key once: one wave
    seen: dict[Any, int] = {}
    result: list[list[IndexedRow]] = []
    for row in rows:
        key = row[1][key_column]
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        if occurrence == len(result):
            result.append([])
        result[occurrence].append(row)
    return result


def _fit(table: Table, column: str, text: str) -> str:
    """`text` cut to the column's length, so a long token subject never fails a row."""
    length = getattr(table.c[column].type, "length", None)
    return text[:length] if length else text


def _rejection(exc: DBAPIError) -> str:
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    return f"Rejected by the database: {detail}"
