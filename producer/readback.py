"""Read back what the batches wrote: rows of an entity's table, by key or paged.

The only place the producer touches SQL, read-only: tables are reflected (the producer
does not import the worker's models) and mapped back to the seed's JSON names.
"""

from __future__ import annotations

import threading
from functools import cache, partial
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, MetaData, Table, func, select

from claimpay.engines import DbLimits, EngineRegistry, make_engine
from claimpay.entities import EntitySpec
from producer.errors import InvalidSort


class ReadBack:
    """Readers (`claimpay.engines.make_engine`) and reflected tables, built on first use
    per database."""

    def __init__(self, urls: dict[str, str], statement_timeout_s: int) -> None:
        reader = partial(
            make_engine, limits=DbLimits(statement_timeout_s), pool_size=5, writer=False
        )
        self._engines = EngineRegistry(urls, reader)
        self._tables: dict[tuple[str, str], Table] = {}
        self._lock = threading.Lock()

    def table(self, database: str, spec: EntitySpec) -> tuple[Engine, Table]:
        engine = self._engines.get(database)
        with self._lock:
            table = self._tables.get((database, spec.table))
            if table is None:
                table = Table(spec.table, MetaData(), autoload_with=engine)
                self._tables[(database, spec.table)] = table
        return engine, table

    def dispose(self) -> None:
        self._engines.dispose()


def json_names(spec: EntitySpec) -> dict[str, str]:
    """Column name -> the seed's JSON name."""
    return {attr: field.alias or attr for attr, field in spec.row_model.model_fields.items()}


def get_row(
    readback: ReadBack, database: str, spec: EntitySpec, key: int | str
) -> dict[str, Any] | None:
    """The row with `key`, or None; a key no row can have (out of the column's range, too
    long, text PostgreSQL cannot store) is never sent to the database, whose error it
    would be."""
    if not storable_key(spec, key):
        return None
    engine, table = readback.table(database, spec)
    if isinstance(key, str) and "\x00" in key and engine.dialect.name == "postgresql":
        return None  # PostgreSQL text cannot hold NUL: the driver refuses such a parameter
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c[spec.key_column] == key)).mappings().first()
    return None if row is None else _as_json(spec, dict(row))


def storable_key(spec: EntitySpec, key: object) -> bool:
    """Whether a row could have `key`: it passes the row model's checks of the key field
    (a 32-bit integer, a text of the allowed length)."""
    try:
        _key_adapter(spec).validate_python(key)
    except ValidationError:
        return False
    return True


@cache
def _key_adapter(spec: EntitySpec) -> TypeAdapter[Any]:
    field = spec.row_model.model_fields[spec.key_column]
    checked: Any = field.annotation
    if field.metadata:
        checked = _ANNOTATED[(checked, *field.metadata)]
    return TypeAdapter(checked)


_ANNOTATED: Any = Annotated  # subscripted at run time, which a type checker cannot follow


def list_rows(
    readback: ReadBack, database: str, spec: EntitySpec, page: int, size: int, sort_by: str | None
) -> tuple[int, list[dict[str, Any]]]:
    """`(total count, rows of the page)`, sorted as `sort_by` says (`Field:asc,Other:desc`)."""
    engine, table = readback.table(database, spec)
    order = _order(spec, table, sort_by)
    query = select(table).order_by(*order).offset((page - 1) * size).limit(size)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        rows = [_as_json(spec, dict(row)) for row in conn.execute(query).mappings()]
    return total, rows


def _order(spec: EntitySpec, table: Table, sort_by: str | None) -> list[Any]:
    columns = {json: column for column, json in json_names(spec).items()}
    order: list[Any] = []
    for part in (sort_by or "").split(","):
        name, _, direction = part.strip().partition(":")
        if not name:
            continue
        if name not in columns or direction.lower() not in ("", "asc", "desc"):
            raise InvalidSort(f"sortBy: cannot sort by {part.strip()!r}.")
        column = table.c[columns[name]]
        order.append(column.desc() if direction.lower() == "desc" else column.asc())
    order.append(table.c[spec.key_column].asc())
    return order


def _as_json(spec: EntitySpec, row: dict[str, Any]) -> dict[str, Any]:
    return {json: row.get(column) for column, json in json_names(spec).items()}
