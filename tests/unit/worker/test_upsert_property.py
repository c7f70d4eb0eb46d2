"""The upsert core against a row-by-row reference model, on random batches (SQLite)."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from tests.unit.worker.reference import (
    KEY,
    NOW,
    SEED,
    TABLE,
    USERS,
    GeneratedRow,
    ReferenceTable,
    assert_apply_chunk_matches_reference,
    batches,
    read_table,
    reset,
    valid_rows,
)
from worker.upsert import upsert_rows

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # each example resets the table first, so sharing the function's engine is safe


@PROPERTY
@given(batch=batches(), user=st.sampled_from(USERS))
def test_apply_chunk_matches_the_row_by_row_reference(
    engine: Engine, batch: list[GeneratedRow], user: str
) -> None:
    assert_apply_chunk_matches_reference(engine, batch, user, job_id=uuid.uuid4().hex)


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
