"""Streaming intake: parse a JSON array incrementally and store it chunk by chunk.

Memory stays bounded by the flush size, whatever the body's size. Rows are only
shape-checked here (is it an array); each row is validated by the worker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import ijson
import orjson

from claimpay.entities import EntitySpec
from claimpay.rows import usable_key


class MalformedBody(Exception):
    """Raised when the body is not a well-formed JSON array."""


@dataclass
class ChunkPlanner:
    """Assigns input rows to chunks: row i goes to chunk i // size, except that a repeated
    key joins the chunk of its first occurrence, so one worker applies all of a key's rows
    in input order (last write wins) whatever runs in parallel."""

    size: int
    count: int = 0
    rows_per_chunk: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _chunk_of_key: dict[int, int] = field(default_factory=dict)

    def place(self, key: int | None) -> tuple[int, int, bool]:
        """`(input index, chunk, moved)` for the next row; `moved` if not its home chunk."""
        index = self.count
        self.count += 1
        home = index // self.size
        chunk = home if key is None else self._chunk_of_key.setdefault(key, home)
        self.rows_per_chunk[chunk] += 1
        return index, chunk, chunk != home

    def chunks(self) -> list[tuple[int, int]]:
        """`(chunk, row count)` of every non-empty chunk, in order."""
        return sorted((c, n) for c, n in self.rows_per_chunk.items() if n)


WriteRows = Callable[[dict[int, list[bytes]], dict[int, int]], None]


async def receive_array(
    body: AsyncIterator[bytes],
    spec: EntitySpec,
    planner: ChunkPlanner,
    write_rows: WriteRows,
    flush_rows: int = 5_000,
) -> int:
    """Parse `body` as a JSON array of rows, writing them through `write_rows` in batches
    of about `flush_rows`; returns the number of rows. Raises `MalformedBody`."""
    rows: list[Any] = []
    parser = ijson.items_coro(_Sink(rows), "item", use_float=True)
    pending: dict[int, list[bytes]] = defaultdict(list)
    moved: dict[int, int] = {}
    buffered = 0
    started = False
    try:
        async for data in body:
            if not data:
                continue
            if not started:
                _require_array_start(data)
                started = data.strip() != b""
            parser.send(data)
            for row in rows:
                index, chunk, is_moved = planner.place(usable_key(spec, row))
                pending[chunk].append(_encode(index, row))
                if is_moved:
                    moved[index] = chunk
            buffered += len(rows)
            rows.clear()
            if buffered >= flush_rows:
                await anyio.to_thread.run_sync(write_rows, dict(pending), dict(moved))
                pending.clear()
                moved.clear()
                buffered = 0
        if not started:
            raise MalformedBody("The request body is empty; send a JSON array of rows.")
        parser.close()
    except ijson.JSONError as exc:
        raise MalformedBody(f"The request body is not valid JSON: {_first_line(exc)}") from exc
    for row in rows:
        index, chunk, is_moved = planner.place(usable_key(spec, row))
        pending[chunk].append(_encode(index, row))
        if is_moved:
            moved[index] = chunk
    if pending:
        await anyio.to_thread.run_sync(write_rows, dict(pending), dict(moved))
    return planner.count


class _Sink:
    """ijson's target: collects parsed items into a list the caller drains."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def send(self, value: Any) -> None:
        self.items.append(value)

    def close(self) -> None:
        return None


def _require_array_start(data: bytes) -> None:
    head = data.lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head and not head.startswith(b"["):
        raise MalformedBody("The request body must be a JSON array of rows.")


def _encode(index: int, row: Any) -> bytes:
    return orjson.dumps([index, row])


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
