"""The 207 envelope is read item by item and turned into a summary, CSV or a filtered envelope."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from cli.client.results import (
    MAX_DISTINCT_ERRORS,
    OTHER_MESSAGES,
    EnvelopeReader,
    item_id,
    only_failed,
    summarize,
    write_csv,
    write_envelope,
)


def item(key: Any, status: int, body: str) -> dict[str, Any]:
    return {"id": [{"key": "claimPromptPay_Key", "value": key}], "status": status, "body": body}


ITEMS = [
    item(1, 201, "Created"),
    item(2, 200, "Updated"),
    item(None, 400, "claimPromptPay_Key: is required"),
    item(4, 400, 'tax_ID: String should have at most 32 characters, "quoted"'),
    item(5, 503, "Not applied: database unavailable"),
    item(6, 400, "claimPromptPay_Key: is required"),
]


def envelope_chunks(items: list[dict[str, Any]], size: int = 13) -> list[bytes]:
    body = json.dumps({"data": items, "error": None, "debug": {"activityID": "job-1"}}).encode()
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_items_are_read_from_chunks_in_order_with_the_activity_id() -> None:
    reader = EnvelopeReader(envelope_chunks(ITEMS))
    assert list(reader.items()) == ITEMS
    assert reader.activity_id == "job-1"


def test_items_are_yielded_before_the_envelope_ends() -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"data":['
        while True:
            sent += 1
            yield json.dumps(item(sent, 201, "Created")).encode() + b","

    items = EnvelopeReader(endless()).items()
    assert [next(items)["id"][0]["value"] for _ in range(3)] == [1, 2, 3]
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


def test_csv_has_id_status_body_with_the_key_value_as_id() -> None:
    out = io.StringIO()
    assert write_csv(ITEMS, out) == 6
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["id", "status", "body"]
    assert rows[1] == ["1", "201", "Created"]
    assert rows[3] == ["", "400", "claimPromptPay_Key: is required"]
    assert rows[4][2] == 'tax_ID: String should have at most 32 characters, "quoted"'


def test_a_composite_key_is_joined() -> None:
    entry = {"id": [{"key": "a", "value": 1}, {"key": "b", "value": "x"}], "status": 200}
    assert item_id(entry) == "1;x"


def test_a_filtered_envelope_keeps_the_seed_shape() -> None:
    reader = EnvelopeReader(envelope_chunks(ITEMS))
    out = io.BytesIO()
    assert write_envelope(reader, only_failed(reader.items()), out) == 4
    written = json.loads(out.getvalue())
    assert written == {
        "data": [entry for entry in ITEMS if entry["status"] >= 300],
        "error": None,
        "debug": {"activityID": "job-1"},
    }


def test_an_empty_envelope_is_written_as_one() -> None:
    reader = EnvelopeReader(envelope_chunks([]))
    out = io.BytesIO()
    assert write_envelope(reader, reader.items(), out) == 0
    assert json.loads(out.getvalue())["data"] == []
