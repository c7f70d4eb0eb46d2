"""The 207 multi-status envelope and the request-level error envelope.

Workers store results compactly, `[index, status, body, key]` with `body` null for the
standard "Created"/"Updated"; readers expand them here, streaming, in input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from claimpay.entities import EntitySpec

CREATED = 201
UPDATED = 200
INVALID = 400
NOT_PROCESSED = 409
"""A row of a cancelled job that no worker applied."""
NOT_PROCESSED_BODY = "Not processed: job cancelled"
STANDARD_BODIES = {CREATED: "Created", UPDATED: "Updated", NOT_PROCESSED: NOT_PROCESSED_BODY}

Outcome = tuple[int, int, str | None, Any]
"""A stored row result: (input index, HTTP status, body or None for the standard one, key)."""


def outcome(index: int, status: int, key: Any, body: str | None = None) -> Outcome:
    """A compact row result; the standard bodies are left out to keep results small."""
    return (index, status, None if STANDARD_BODIES.get(status) == body else body, key)


def expand(
    spec: EntitySpec, item: Outcome | list[Any], attempts: list[Any] | None = None
) -> dict[str, Any]:
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
