"""A job's results read as a stream (the API's NDJSON, one item per line): never whole.

From the items: a summary (counts by outcome, the most frequent error messages) and the
file forms: CSV (`row,id,status,body`), NDJSON (the items, `row` included) and the seed
API's 207 JSON envelope (without `row`). With line numbers, CSV and NDJSON add `line`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from claimpay.csvcells import FormulaSafeWriter
from claimpay.envelope import is_success

ResultItem = dict[str, Any]
"""One result: `{"row", "id": [{"key", "value"}], "status", "body"}` (+ `line`, `input`)."""

CSV_COLUMNS = ("row", "id", "status", "body")
ENVELOPE_FIELDS = ("id", "status", "body", "attempts")
"""The members of a 207 envelope item (`attempts` only for a retried row)."""
MAX_DISTINCT_ERRORS = 1000
"""Distinct error messages counted one by one; later new ones count as "other messages"."""
OTHER_MESSAGES = "(other messages)"


def ndjson_results(chunks: Iterable[bytes]) -> Iterator[ResultItem]:
    """The items of an NDJSON body arriving in byte chunks, one at a time."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield orjson.loads(line)
    if pending.strip():
        yield orjson.loads(pending)


def is_failure(item: ResultItem) -> bool:
    """A row whose status is not 2xx."""
    status = item.get("status")
    return not (isinstance(status, int) and is_success(status))


def only_failed(items: Iterable[ResultItem]) -> Iterator[ResultItem]:
    return (item for item in items if is_failure(item))


def item_id(item: ResultItem) -> str:
    """The key value(s) of an item: `value`, or `v1;v2` for a key of several columns."""
    pairs = item.get("id") or []
    values = ["" if pair.get("value") is None else str(pair["value"]) for pair in pairs]
    return ";".join(values)


@dataclass
class ResultsSummary:
    """What happened to the rows, and the most frequent error messages."""

    rows: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    errors: Counter[tuple[int, str]] = field(default_factory=Counter)

    def add(self, item: ResultItem) -> None:
        status = item.get("status")
        status = status if isinstance(status, int) else 0
        self.rows += 1
        self.by_status[status] += 1
        if is_failure(item):
            message = (status, str(item.get("body") or ""))
            if message not in self.errors and len(self.errors) >= MAX_DISTINCT_ERRORS:
                message = (status, OTHER_MESSAGES)
            self.errors[message] += 1

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def top_errors(self, count: int = 5) -> list[tuple[int, str, int]]:
        """(status, message, rows), the most frequent first."""
        return [(status, body, n) for (status, body), n in self.errors.most_common(count)]


def summarize(items: Iterable[ResultItem]) -> ResultsSummary:
    summary = ResultsSummary()
    for item in items:
        summary.add(item)
    return summary


def write_csv(items: Iterable[ResultItem], out: IO[str], with_lines: bool = False) -> int:
    """`row,id,status,body` (and `line`), one line per item; returns the rows written."""
    writer = FormulaSafeWriter(out)
    writer.writerow((*CSV_COLUMNS, "line") if with_lines else CSV_COLUMNS)
    rows = 0
    for item in items:
        cells = [item.get("row"), item_id(item), item.get("status"), item.get("body")]
        writer.writerow((*cells, item.get("line")) if with_lines else cells)
        rows += 1
    return rows


def write_ndjson(items: Iterable[ResultItem], out: IO[bytes]) -> int:
    """The items, one JSON object a line; returns the rows written."""
    rows = 0
    for item in items:
        out.write(orjson.dumps(item) + b"\n")
        rows += 1
    return rows


def write_envelope(items: Iterable[ResultItem], out: IO[bytes], activity_id: str) -> int:
    """The seed API's 207 envelope of `items` (only its members: no `row`), written as the
    items arrive; returns the number of items written."""
    out.write(b'{"data":[')
    rows = 0
    for item in items:
        out.write(b"," if rows else b"")
        out.write(orjson.dumps({name: item[name] for name in ENVELOPE_FIELDS if name in item}))
        rows += 1
    tail = {"error": None, "debug": {"activityID": activity_id}}
    out.write(b"]," + orjson.dumps(tail)[1:])
    return rows
