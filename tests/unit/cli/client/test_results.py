"""Results are read as NDJSON item by item and turned into a summary, CSV, NDJSON or the
207 envelope."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from cli.client.results import (
    MAX_DISTINCT_ERRORS,
    OTHER_MESSAGES,
    item_id,
    ndjson_results,
    only_failed,
    summarize,
    write_csv,
    write_envelope,
    write_ndjson,
)


def item(key: Any, status: int, body: str, row: int = 0) -> dict[str, Any]:
    found = {"id": [{"key": "claimPromptPay_Key", "value": key}], "status": status, "body": body}
    return {"row": row, **found} if row else found


ITEMS = [
    item(1, 201, "Created", 1),
    item(2, 200, "Updated", 2),
    item(None, 400, "claimPromptPay_Key: is required", 3),
    item(4, 400, 'tax_ID: String should have at most 32 characters, "quoted"', 4),
    item(5, 503, "Not applied: database unavailable", 5),
    item(6, 400, "claimPromptPay_Key: is required", 6),
]


def ndjson_chunks(items: list[dict[str, Any]], size: int = 13) -> list[bytes]:
    body = b"".join(json.dumps(entry).encode() + b"\n" for entry in items)
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_items_are_read_from_chunks_in_order() -> None:
    assert list(ndjson_results(ndjson_chunks(ITEMS))) == ITEMS
    assert list(ndjson_results([b'{"row": 1}\n', b'\n{"row"', b": 2}"])) == [
        {"row": 1},
        {"row": 2},
    ]


def test_items_are_yielded_before_the_body_ends() -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield json.dumps(item(sent, 201, "Created", sent)).encode() + b"\n"

    items = ndjson_results(endless())
    assert [next(items)["row"] for _ in range(3)] == [1, 2, 3]
    assert sent <= 4


def test_failed_rows_are_those_whose_status_is_not_2xx() -> None:
    assert [entry["status"] for entry in only_failed(ITEMS)] == [400, 400, 503, 400]


def test_the_summary_counts_outcomes_and_ranks_error_messages() -> None:
    summary = summarize(ITEMS)
    assert summary.rows == 6
    assert summary.failed == 4
    assert summary.by_status[400] == 3
    assert summary.top_errors(2) == [
        (400, "claimPromptPay_Key: is required", 2),
        (400, 'tax_ID: String should have at most 32 characters, "quoted"', 1),
    ]


def test_the_summary_counts_a_bounded_number_of_distinct_messages() -> None:
    many = [item(i, 400, f"message {i}") for i in range(MAX_DISTINCT_ERRORS + 50)]
    summary = summarize(many)
    assert len(summary.errors) == MAX_DISTINCT_ERRORS + 1
    assert summary.errors[(400, OTHER_MESSAGES)] == 50
    assert summary.failed == len(many)


def test_csv_has_row_id_status_body_with_the_key_value_as_id() -> None:
    out = io.StringIO()
    assert write_csv(ITEMS, out) == 6
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["row", "id", "status", "body"]
    assert rows[1] == ["1", "1", "201", "Created"]
    assert rows[3] == ["3", "", "400", "claimPromptPay_Key: is required"]
    assert rows[4][3] == 'tax_ID: String should have at most 32 characters, "quoted"'


def test_csv_with_line_numbers_adds_a_line_column() -> None:
    out = io.StringIO()
    write_csv([{**ITEMS[2], "line": 9}], out, with_lines=True)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [
        ["row", "id", "status", "body", "line"],
        ["3", "", "400", "claimPromptPay_Key: is required", "9"],
    ]


def test_ndjson_keeps_every_member_of_each_item() -> None:
    out = io.BytesIO()
    assert write_ndjson(ITEMS[:2], out) == 2
    assert [json.loads(line) for line in out.getvalue().splitlines()] == ITEMS[:2]


def test_csv_cells_that_start_like_formulas_are_neutralised() -> None:
    formula = '=HYPERLINK("http://evil.example","x"): unknown field'
    items = [item("=1+1", 400, formula), item(-7, 400, "@SUM(A1)"), item("-x", 201, "Created")]
    out = io.StringIO()
    write_csv(items, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert [row[1:] for row in rows[1:]] == [
        ["'=1+1", "400", "'" + formula],
        ["-7", "400", "'@SUM(A1)"],
        ["'-x", "201", "Created"],
    ]


def test_a_composite_key_is_joined() -> None:
    entry = {"id": [{"key": "a", "value": 1}, {"key": "b", "value": "x"}], "status": 200}
    assert item_id(entry) == "1;x"


def test_a_filtered_envelope_keeps_the_seed_shape_without_row() -> None:
    out = io.BytesIO()
    assert write_envelope(only_failed(ITEMS), out, "job-1") == 4
    written = json.loads(out.getvalue())
    assert written == {
        "data": [
            {name: entry[name] for name in ("id", "status", "body")}
            for entry in ITEMS
            if entry["status"] >= 300
        ],
        "error": None,
        "debug": {"activityID": "job-1"},
    }


def test_an_empty_envelope_is_written_as_one() -> None:
    out = io.BytesIO()
    assert write_envelope([], out, "job-1") == 0
    assert json.loads(out.getvalue())["data"] == []
