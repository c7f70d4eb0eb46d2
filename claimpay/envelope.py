"""Row results and the 207 multi-status envelope, and the request-level error envelope.

Workers store results compactly, `[index, status, body, key]` with `body` null for the
standard "Created"/"Updated"; readers expand them here, streaming, in input order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from enum import IntEnum
from typing import Any, NamedTuple

import orjson

from claimpay.entities import EntitySpec


class RowStatus(IntEnum):
    """The HTTP status of one row's result (`data[].status` of the 207 envelope)."""

    UPDATED = 200
    """The row's key existed: the row was updated."""
    CREATED = 201
    """The row's key was new: the row was inserted."""
    INVALID = 400
    """The row failed validation (its body names each bad field); never applied."""
    NOT_PROCESSED = 409
    """The job was cancelled before a worker applied the row."""
    REJECTED = 422
    """The database refused the row (a constraint); the chunk's other rows were applied."""
    INTERNAL_ERROR = 500
    """An unexpected fault, or a chunk that failed too often; the row was not applied."""
    UNAVAILABLE = 503
    """The database stayed unavailable through every retry; the row may not be applied."""


def is_success(status: int) -> bool:
    """A 2xx row status: the row was applied (or a dry run would apply it)."""
    return 200 <= status < 300


NOT_PROCESSED_BODY = "Not processed: job cancelled"
STANDARD_BODIES: dict[int, str] = {
    RowStatus.CREATED: "Created",
    RowStatus.UPDATED: "Updated",
    RowStatus.NOT_PROCESSED: NOT_PROCESSED_BODY,
}


class Outcome(NamedTuple):
    """A row's result, in the order of its stored form `[index, status, body, key]`."""

    position: int
    """The row's index in the batch (from 0); the stored form's `index`."""
    status: int
    """A `RowStatus` (read back from the store as a plain int)."""
    body: str | None
    """The message, or None for the status's standard body (`STANDARD_BODIES`)."""
    key: Any
    """The row's key, or None when the row has no usable one."""


MAX_ROW_MESSAGE_BYTES = 256
"""Most UTF-8 bytes of a row's stored message (a validation or database error); a longer
one is cut and ends with "…". Control characters are stored as "?"."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def outcome(index: int, status: RowStatus, key: Any, body: str | None = None) -> Outcome:
    """A compact row result; the standard bodies are left out to keep results small, and
    any other is bounded (`bounded_message`)."""
    if body is None or STANDARD_BODIES.get(status) == body:
        return Outcome(index, status, None, key)
    return Outcome(index, status, bounded_message(body), key)


def bounded_message(text: str) -> str:
    """`text` with control characters as "?", cut to `MAX_ROW_MESSAGE_BYTES` in UTF-8."""
    text = _CONTROL.sub("?", text)
    if len(text) * 4 <= MAX_ROW_MESSAGE_BYTES or len(text.encode()) <= MAX_ROW_MESSAGE_BYTES:
        return text
    cut = text.encode()[: MAX_ROW_MESSAGE_BYTES - 3].decode(errors="ignore")
    return cut + "…"


def encode_outcomes(outcomes: Sequence[Outcome]) -> bytes:
    """The stored form of row results: a JSON array of `[index, status, body, key]`."""
    # orjson writes tuples but not their subclasses: `default=tuple` hands it each Outcome
    # as a plain tuple (a builtin, so about 4x cheaper than a Python callback).
    return orjson.dumps(outcomes, default=tuple)


def decode_outcomes(blob: bytes | str | None) -> list[Outcome]:
    """Row results from their stored form (`encode_outcomes`); empty for None."""
    return [Outcome._make(item) for item in orjson.loads(blob)] if blob else []


def expand(spec: EntitySpec, item: Outcome, attempts: list[Any] | None = None) -> dict[str, Any]:
    """One `data[]` item of the envelope; a retried row also lists its earlier `attempts`."""
    _, status, body, key = item
    expanded: dict[str, Any] = {
        "id": [{"key": spec.key_field, "value": key}],
        "status": status,
        "body": body if body is not None else STANDARD_BODIES.get(status, "Error"),
    }
    if attempts:
        expanded["attempts"] = attempts
    return expanded


def envelope(data: Any, activity_id: str, error: Any = None) -> dict[str, Any]:
    """`{data, error, debug: {activityID}}`, the shape of every response body."""
    return {"data": data, "error": error, "debug": {"activityID": activity_id}}


def stream_envelope(
    items: Iterable[dict[str, Any]], activity_id: str, batch: int = 2000
) -> Iterator[bytes]:
    """The 207 body as bytes from expanded items, `batch` at a time, never built whole."""
    yield b'{"data":['
    first = True
    block: list[dict[str, Any]] = []
    for item in items:
        block.append(item)
        if len(block) >= batch:
            yield (b"" if first else b",") + orjson.dumps(block)[1:-1]
            first, block = False, []
    if block:
        yield (b"" if first else b",") + orjson.dumps(block)[1:-1]
    tail = {"error": None, "debug": {"activityID": activity_id}}
    yield b"]," + orjson.dumps(tail)[1:]
