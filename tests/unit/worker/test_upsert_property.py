"""The upsert core against a row-by-row reference model, on random batches (SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, DateTime, Engine, Table, delete
from sqlalchemy.dialects import sqlite

from claimpay.entities import CLAIM_PROMPT_PAY
from claimpay.entities.base import as_naive_utc
from claimpay.envelope import Outcome
from tests.factories import UTC_OFFSETS
from tests.unit.worker.reference import (
    KEY,
    NOW,
    SEED,
    TABLE,
    USERS,
    GeneratedRow,
    ReferenceTable,
    assert_apply_matches_reference,
    batches,
    read_table,
    reset,
    stored_element,
    valid_rows,
)
from worker.apply import split_valid, split_valid_stored
from worker.models import ENTITY_TABLES
from worker.upsert import core, strategies, upsert_rows
from worker.upsert.fields import Defaults

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # each example resets the table first, so sharing the function's engine is safe


@PROPERTY
@given(batch=batches(), user=st.sampled_from(USERS))
def test_apply_chunk_matches_the_row_by_row_reference(
    engine: Engine, batch: list[GeneratedRow], user: str
) -> None:
    assert_apply_matches_reference(engine, batch, user, job_id=uuid.uuid4().hex)


@PROPERTY
@given(
    batch=st.lists(valid_rows(), max_size=30), split=st.integers(0, 30), user=st.sampled_from(USERS)
)
def test_upsert_rows_in_consecutive_parts_matches_the_reference(
    engine: Engine, batch: list[GeneratedRow], split: int, user: str
) -> None:
    reference = ReferenceTable(SEED)
    expected = reference.apply(batch, user, NOW)
    rows = [(index * 3, dict(row.columns or {})) for index, row in enumerate(batch)]
    with engine.begin() as conn:
        reset(conn)
        outcomes = upsert_rows(conn, TABLE, KEY, rows[:split], user=user, now=NOW)
        outcomes += upsert_rows(conn, TABLE, KEY, rows[split:], user=user, now=NOW)
    assert outcomes == [
        (index, status, None, values[KEY])
        for (index, values), status in zip(rows, expected, strict=True)
    ]
    with engine.connect() as conn:
        assert read_table(conn) == reference.rows


@settings(max_examples=200, deadline=None)
@given(batch=batches())
def test_a_stored_chunk_validates_as_its_rows_do_one_by_one(batch: list[GeneratedRow]) -> None:
    """The worker's one-call validation of a stored element (rows as dicts) accepts and
    refuses the same rows, with the same values, as the row model row by row."""
    raw_rows = [(index, row.raw) for index, row in enumerate(batch)]
    valid, invalid = split_valid(CLAIM_PROMPT_PAY, raw_rows)
    stored_valid, stored_invalid = split_valid_stored(CLAIM_PROMPT_PAY, [stored_element(batch)])
    blank = dict.fromkeys(column.name for column in TABLE.columns)
    assert [(index, blank | values) for index, values in stored_valid] == valid
    assert stored_invalid == invalid
    assert [index for index, _ in stored_valid] == [
        index for index, row in enumerate(batch) if row.columns is not None
    ]


@PROPERTY
@given(batch=batches(), user=st.sampled_from(USERS))
def test_the_plain_sqlite_statements_store_what_sqlalchemy_would(
    engine: Engine, batch: list[GeneratedRow], user: str
) -> None:
    """`upsert_sqlite` binds its values itself: every stored byte must be what the portable
    strategy (SQLAlchemy's statements and binding) stores for the same chunk."""
    valid, _ = split_valid_stored(CLAIM_PROMPT_PAY, [stored_element(batch)])
    by_sqlite, by_portable = _stored_by_each_strategy(engine, TABLE, KEY, valid, reset, user)
    assert by_sqlite == by_portable


def _stored_by_each_strategy(
    engine: Engine,
    table: Table,
    key: str,
    rows: list[tuple[int, dict[str, Any]]],
    reset_table: Callable[[Connection], object],
    user: str = "u",
) -> list[tuple[list[Outcome], list[Any]]]:
    """The outcomes and the stored rows (raw) of `rows` applied to the table as
    `reset_table` leaves it, by `upsert_sqlite`, then by `upsert_portable`."""
    stored = []
    for strategy in (strategies.upsert_sqlite, strategies.upsert_portable):
        chosen = mock.patch.object(core, "strategy_for", lambda _, chosen=strategy: chosen)
        with chosen, engine.begin() as conn:
            reset_table(conn)
            outcomes = upsert_rows(conn, table, key, rows, user=user, now=NOW)
        with engine.connect() as conn:
            raw = conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY 1").fetchall()  # noqa: S608
        stored.append((outcomes, list(raw)))
    return stored


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.none() | st.just(UTC) | UTC_OFFSETS))
def test_a_date_is_bound_as_sqlalchemy_binds_its_naive_utc_value(value: datetime) -> None:
    try:
        naive = as_naive_utc(value)
    except OverflowError:
        return  # out of range once in UTC: validation refuses it (test_timestamps)
    dialect = sqlite.dialect()
    processor = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    assert strategies._date_text(value) == processor(naive)


def test_the_plain_statements_bind_every_column_a_column_at_a_time() -> None:
    dialect = sqlite.dialect()
    plain = strategies._sqlite_statements(ENTITY_TABLES["place_codes"], "place_code", dialect)
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    rows: list[dict[str, Any]] = [
        {"place_code": "A", "exclude_proc_auth": True, "update_date": moment},
        {"place_code": "B", "exclude_proc_auth": False, "update_user": "sent", "entry_user": "e"},
    ]
    values = plain.columns(rows, Defaults(datetime(2020, 5, 6), "entry", "update"))
    assert values["place_code"] == ["A", "B"]
    assert values["exclude_proc_auth"] == [1, 0]  # SQLAlchemy's Boolean binds 1 and 0
    assert values["update_date"] == ["2030-01-02 01:04:05.000000", "2020-05-06 00:00:00.000000"]
    assert values["update_user"] == ["update", "sent"]
    # An update keeps what the row did not send: the create's defaults come later.
    assert values["entry_date"] == [None, None]
    assert values["entry_user"] == [None, "e"]
    assert values["description"] == [None, None]
    assert set(values) == set(plain.insert_columns)


def test_the_plain_sqlite_statements_store_what_sqlalchemy_would_for_a_string_key_and_booleans(
    engine: Engine,
) -> None:
    """The same check on the place codes: a string key (the stored keys' query), booleans
    (their bind processor), a duplicate key (a second wave), audit columns sent and not."""
    table = ENTITY_TABLES["place_codes"]
    moment = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))
    seed = {"place_code": "11", "all_places": "Y", "exclude_proc_auth": True}
    seed |= {"entry_date": NOW, "entry_user": "seed", "update_date": NOW, "update_user": "seed"}
    rows = [
        (0, {"place_code": "11", "all_places": "N", "exclude_proc_auth": False}),
        (1, {"place_code": "22", "all_places": "Y", "exclude_proc_auth": True, "description": ""}),
        (2, {"place_code": "11", "all_places": "Y", "exclude_proc_auth": True, "entry_user": "e"}),
        (3, {"place_code": "33", "all_places": "N", "exclude_proc_auth": False}),
    ]
    rows[3][1].update(update_date=moment, entry_date=moment, old_place_code=None)

    def reset_codes(conn: Connection) -> None:
        conn.execute(delete(table))
        conn.execute(table.insert(), [seed])

    stored = _stored_by_each_strategy(engine, table, "place_code", rows, reset_codes)
    assert [item.status for item in stored[0][0]] == [200, 201, 200, 201]
    assert len(stored[0][1]) == 3
    assert stored[0] == stored[1]
