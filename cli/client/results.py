"""The 207 results envelope read as a stream (ijson): items one at a time, never whole.

From the items: a summary (counts by outcome, the most frequent error messages) and the
two file forms, CSV (`id,status,body`) and the JSON envelope, optionally failed rows only.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson
import orjson

from claimpay.envelope import is_success

ResultItem = dict[str, Any]
"""One `data[]` item: `{"id": [{"key", "value"}], "status", "body"}`."""

CSV_COLUMNS = ("id", "status", "body")
MAX_DISTINCT_ERRORS = 1000
"""Distinct error messages counted one by one; later new ones count as "other messages"."""
OTHER_MESSAGES = "(other messages)"


class EnvelopeReader:
    """Items of a 207 envelope arriving in byte chunks; `activity_id` once they are read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._builder: Any = None
        self.activity_id: str | None = None

    def items(self) -> Iterator[ResultItem]:
        events = ijson.sendable_list()
        parser = ijson.parse_coro(events, use_float=True)
        for chunk in self._chunks:
            parser.send(chunk)
            yield from self._consume(events)
            del events[:]
        parser.close()
        yield from self._consume(events)

    def _consume(self, events: list[tuple[str, str, Any]]) -> Iterator[ResultItem]:
        for prefix, event, value in events:
            if self._builder is None and prefix == "data.item" and event == "start_map":
                self._builder = ijson.ObjectBuilder()
            if self._builder is not None:
                self._builder.event(event, value)
                if prefix == "data.item" and event == "end_map":
                    yield self._builder.value
                    self._builder = None
            elif prefix == "debug.activityID" and event == "string":
                self.activity_id = value


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


def write_csv(items: Iterable[ResultItem], out: IO[str]) -> int:
    """`id,status,body`, one line per item; returns the number of rows written."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for item in items:
        writer.writerow((item_id(item), item.get("status"), item.get("body")))
        rows += 1
    return rows


def write_envelope(reader: EnvelopeReader, items: Iterable[ResultItem], out: IO[bytes]) -> int:
    """The 207 envelope of `items` (all of `reader`'s, or a filtered selection), written as
    the items arrive; returns the number of items written."""
    out.write(b'{"data":[')
    rows = 0
    for item in items:
        out.write(b"," if rows else b"")
        out.write(orjson.dumps(item))
        rows += 1
    tail = {"error": None, "debug": {"activityID": reader.activity_id}}
    out.write(b"]," + orjson.dumps(tail)[1:])
    return rows
