"""The upsert core against a row-by-row reference model, on random batches (SQLite)."""

from __future__ import annotations

import uuid
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from claimpay.entities import CLAIM_PROMPT_PAY
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
from worker.upsert import core, strategies, upsert_rows

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
    stored = []
    for strategy in (strategies.upsert_sqlite, strategies.upsert_portable):
        chosen = mock.patch.object(core, "strategy_for", lambda _, chosen=strategy: chosen)
        with chosen, engine.begin() as conn:
            reset(conn)
            outcomes = upsert_rows(conn, TABLE, KEY, valid, user=user, now=NOW)
        with engine.connect() as conn:
            raw = conn.exec_driver_sql(f"SELECT * FROM {TABLE.name} ORDER BY 1").fetchall()  # noqa: S608
        stored.append((outcomes, raw))
    assert stored[0] == stored[1]


def test_the_plain_statements_bind_one_column_as_a_one_value_row() -> None:
    plain = strategies._PlainStatements("", (), "", (), {"b": str})
    rows: list[dict[str, Any]] = [{"a": 1, "b": 2}, {"a": 3, "b": None}]
    assert plain.bound(rows, ("a",)) == [(1,), (3,)]
    assert plain.bound(rows, ("b",)) == [("2",), (None,)]
    assert plain.bound(rows, ("a", "b")) == [(1, "2"), (3, None)]
