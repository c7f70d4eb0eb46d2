"""The bench's loader bodies: what `json.dumps` writes, and COPY values equal to what
claimpay stores for the same rows (so the limit loads exactly what claimpay is sent)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from bench.loader import (
    copy_text_line,
    loader_items,
    loader_rows,
    naive_utc,
    prepare_batch,
    table_values,
)
from bench.rows import COLUMNS
from claimpay.entities import CLAIM_PROMPT_PAY
from claimpay.entities.base import as_naive_utc
from claimpay.rows import validate_items


def test_the_body_is_what_json_dumps_writes_and_the_copy_file_has_a_line_per_row(
    tmp_path: Path,
) -> None:
    prepared = prepare_batch(tmp_path, "b", 4_501, first_key=10, seed=3)
    rows = list(loader_rows(4_501, 10, seed=3))
    assert prepared.body() == json.dumps(rows).encode()
    assert prepared.body_bytes == len(prepared.body())
    lines = prepared.copy_path.read_text().splitlines(keepends=True)
    assert lines == [copy_text_line(table_values(row)) for row in rows]
    assert prepared.table_rows() == [table_values(row) for row in rows]


def test_the_values_of_a_row_are_its_json_fields_read_back() -> None:
    items = list(loader_items(3_000, 7, seed=5))
    assert all(values == table_values(row) for row, values in items)
    assert len({values[5] for _, values in items}) == 4  # every plan
    assert len({values[4] for _, values in items}) > 900  # groups


def test_loader_rows_send_every_field_of_the_seed_and_pass_claimpay_validation() -> None:
    rows = list(loader_rows(300, 1))
    aliases = {field.alias for field in CLAIM_PROMPT_PAY.row_model.model_fields.values()}
    assert all(set(row) == aliases for row in rows)
    checked = validate_items(CLAIM_PROMPT_PAY, orjson.dumps(list(enumerate(rows))))
    assert checked is not None
    # The limit's values are the ones claimpay stores: dates as naive UTC.
    for (_, values), row in zip(checked, rows, strict=True):
        stored = {k: as_naive_utc(v) if isinstance(v, datetime) else v for k, v in values.items()}
        assert tuple(stored[name] for name in COLUMNS) == table_values(row)
    offsets = {row["entry_Date"][19:] for row in rows}
    assert any(text.endswith("Z") for text in offsets)
    assert any("+" in text or "-" in text for text in offsets)
    assert "" in offsets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T12:00:00", datetime(2026, 1, 31, 12)),
        ("2026-01-31T12:00:00.250Z", datetime(2026, 1, 31, 12, 0, 0, 250_000)),
        ("2026-01-31T01:30:00+02:00", datetime(2026, 1, 30, 23, 30)),
        ("2026-01-31T20:00:00-05:00", datetime(2026, 2, 1, 1)),
    ],
)
def test_naive_utc(text: str, expected: datetime) -> None:
    assert naive_utc(text) == expected


def test_copy_text_line_escapes_what_the_text_format_reserves() -> None:
    line = copy_text_line([1, None, "a\tb\\c\nd\re", datetime(2026, 1, 2, 3, 4, 5, 6)])
    assert line == "1\t\\N\ta\\tb\\\\c\\nd\\re\t2026-01-02 03:04:05.000006\n"


def test_copy_text_line_escapes_a_lone_tab_and_writes_plain_values_as_they_are() -> None:
    assert copy_text_line([1, "x\ty"]) == "1\tx\\ty\n"
    assert copy_text_line([2, "a b", 3.5]) == "2\ta b\t3.5\n"
