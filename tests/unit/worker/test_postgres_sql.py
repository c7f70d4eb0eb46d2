"""The PostgreSQL statement's record types: sizes dropped, so that the assignment to the
real column (not a cast) rejects an over-long value."""

from __future__ import annotations

import pytest

from worker.upsert.postgres import _unsized


@pytest.mark.parametrize(
    ("declared", "record"),
    [
        ("VARCHAR(20)", "VARCHAR"),
        ("CHAR(8)", "TEXT"),  # CHAR alone would be CHAR(1)
        ("INTEGER", "INTEGER"),
        ("NUMERIC(10, 2)", "NUMERIC"),
        ("TIMESTAMP WITHOUT TIME ZONE", "TIMESTAMP WITHOUT TIME ZONE"),
    ],
)
def test_a_record_type_has_no_size(declared: str, record: str) -> None:
    assert _unsized(declared) == record
