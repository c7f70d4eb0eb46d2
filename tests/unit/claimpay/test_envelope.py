"""The 207 envelope: compact outcomes, their expansion, and the streamed body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from claimpay.entities import CLAIM_PROMPT_PAY
from claimpay.envelope import (
    MAX_ROW_MESSAGE_BYTES,
    Outcome,
    RowStatus,
    decode_outcomes,
    encode_outcomes,
    envelope,
    expand,
    outcome,
    stream_envelope,
)


def parse(parts: list[bytes]) -> dict[str, Any]:
    body = b"".join(parts)
    parsed: dict[str, Any] = orjson.loads(body)
    assert json.loads(body) == parsed
    return parsed


def test_outcome_leaves_out_the_standard_bodies() -> None:
    assert outcome(0, RowStatus.CREATED, 5, "Created") == (0, RowStatus.CREATED, None, 5)
    assert outcome(1, RowStatus.UPDATED, 5, "Updated") == (1, RowStatus.UPDATED, None, 5)
    assert outcome(2, RowStatus.CREATED, 5) == (2, RowStatus.CREATED, None, 5)


def test_outcome_keeps_any_other_body() -> None:
    assert outcome(0, RowStatus.INVALID, None, "tax_ID: too long") == (
        0,
        RowStatus.INVALID,
        "tax_ID: too long",
        None,
    )
    assert outcome(0, RowStatus.UPDATED, 5, "Created") == (0, RowStatus.UPDATED, "Created", 5)
    assert outcome(0, RowStatus.REJECTED, 5, "Rejected") == (0, 422, "Rejected", 5)


@pytest.mark.parametrize(
    ("status", "body"), [(RowStatus.CREATED, "Created"), (RowStatus.UPDATED, "Updated")]
)
def test_expand_restores_the_standard_body(status: RowStatus, body: str) -> None:
    assert expand(CLAIM_PROMPT_PAY, outcome(3, status, 17)) == {
        "id": [{"key": "claimPromptPay_Key", "value": 17}],
        "status": status,
        "body": body,
    }


def test_expand_keeps_an_error_message_and_a_missing_key() -> None:
    item = expand(
        CLAIM_PROMPT_PAY, outcome(0, RowStatus.INVALID, None, "claimPromptPay_Key: is required")
    )
    assert item == {
        "id": [{"key": "claimPromptPay_Key", "value": None}],
        "status": RowStatus.INVALID,
        "body": "claimPromptPay_Key: is required",
    }


def test_expand_gives_a_non_empty_body_to_an_error_without_message() -> None:
    assert expand(CLAIM_PROMPT_PAY, Outcome(0, 500, None, 1))["body"] == "Error"


def test_outcomes_are_stored_as_lists_and_read_back_with_their_names() -> None:
    outcomes = [outcome(4, RowStatus.CREATED, 9), outcome(5, RowStatus.INVALID, None, "bad")]
    blob = encode_outcomes(outcomes)
    assert orjson.loads(blob) == [[4, 201, None, 9], [5, 400, "bad", None]]
    stored = decode_outcomes(blob)
    assert stored == outcomes
    assert (stored[1].position, stored[1].status, stored[1].body) == (5, 400, "bad")
    assert decode_outcomes(None) == []


def test_envelope_has_data_error_and_activity_id() -> None:
    assert envelope([1], "job-1") == {"data": [1], "error": None, "debug": {"activityID": "job-1"}}
    assert envelope(None, "job-2", {"status": 400})["error"] == {"status": 400}


def expanded(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [expand(CLAIM_PROMPT_PAY, item) for item in outcomes]


def test_expand_lists_the_earlier_attempts_of_a_retried_row() -> None:
    attempts = [{"status": 503, "body": "Database unavailable after 3 attempts"}]
    item = expand(CLAIM_PROMPT_PAY, outcome(0, RowStatus.CREATED, 5), attempts)
    assert item["attempts"] == attempts
    assert "attempts" not in expand(CLAIM_PROMPT_PAY, outcome(0, RowStatus.CREATED, 5))


def test_stream_envelope_is_valid_json_in_input_order() -> None:
    outcomes = [
        outcome(0, RowStatus.CREATED, 10),
        outcome(1, RowStatus.INVALID, None, 'bad "quote" \u00e9'),
        outcome(2, RowStatus.UPDATED, 10),
    ]
    body = parse(list(stream_envelope(expanded(outcomes), "act-1")))
    assert body["error"] is None
    assert body["debug"] == {"activityID": "act-1"}
    assert [item["status"] for item in body["data"]] == [
        RowStatus.CREATED,
        RowStatus.INVALID,
        RowStatus.UPDATED,
    ]
    assert body["data"][1]["body"] == 'bad "quote" \u00e9'
    assert body["data"] == [expand(CLAIM_PROMPT_PAY, o) for o in outcomes]


def test_stream_envelope_of_no_rows_has_empty_data() -> None:
    body = parse(list(stream_envelope([], "act-0")))
    assert body == {"data": [], "error": None, "debug": {"activityID": "act-0"}}


@pytest.mark.parametrize("count", [1, 3, 6, 7, 10])
def test_stream_envelope_with_more_items_than_the_batch_size(count: int) -> None:
    outcomes = [
        outcome(i, RowStatus.CREATED if i % 2 else RowStatus.UPDATED, i) for i in range(count)
    ]
    parts = list(stream_envelope(expanded(outcomes), "act", batch=3))
    body = parse(parts)
    assert [item["id"][0]["value"] for item in body["data"]] == list(range(count))
    assert len(parts) == 2 + -(-count // 3)


def test_stream_envelope_consumes_its_input_a_batch_at_a_time() -> None:
    seen: list[int] = []

    def produce() -> Iterator[dict[str, Any]]:
        for i in range(5):
            seen.append(i)
            yield expand(CLAIM_PROMPT_PAY, outcome(i, RowStatus.CREATED, i))

    stream = stream_envelope(produce(), "act", batch=2)
    parts = [next(stream), next(stream)]
    assert seen == [0, 1]
    parts.extend(stream)
    assert len(parse(parts)["data"]) == 5


def test_a_stored_message_is_bounded_in_utf8_bytes_and_printable() -> None:
    long = "Rejected by the database: " + "é\t" * 5_000
    body = outcome(3, RowStatus.REJECTED, 7, long).body
    assert body is not None
    assert len(body.encode()) <= MAX_ROW_MESSAGE_BYTES
    assert body.endswith("…")
    assert body.startswith("Rejected by the database: é?é?")
    short = "tax_ID: String should have at most 32 characters"
    assert outcome(4, RowStatus.INVALID, 8, short).body == short
