"""Intake: parse a JSON array of rows and store it chunk by chunk.

A body up to `buffer_bytes` is parsed in one go (`orjson`, about 4x faster); a larger one
is parsed incrementally (`ijson`), so memory stays bounded whatever the body's size. Rows
are only shape-checked here (is it an array); each row is validated by the worker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
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
    _chunk_of_key: dict[int | str, int] = field(default_factory=dict)

    def place(self, key: int | str | None) -> tuple[int, int, bool]:
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


@dataclass
class _Batcher:
    """Places rows, encodes them `[index, row]`, and writes them every `flush_rows`."""

    spec: EntitySpec
    planner: ChunkPlanner
    write_rows: WriteRows
    flush_rows: int
    pending: dict[int, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    moved: dict[int, int] = field(default_factory=dict)
    buffered: int = 0

    async def add(self, rows: Iterable[Any]) -> None:
        for row in rows:
            index, chunk, is_moved = self.planner.place(usable_key(self.spec, row))
            self.pending[chunk].append(orjson.dumps([index, row]))
            if is_moved:
                self.moved[index] = chunk
            self.buffered += 1
            if self.buffered >= self.flush_rows:
                await self.flush()

    async def flush(self) -> None:
        if self.buffered:
            await anyio.to_thread.run_sync(self.write_rows, dict(self.pending), dict(self.moved))
            self.pending.clear()
            self.moved.clear()
            self.buffered = 0


async def receive_array(
    body: AsyncIterator[bytes],
    spec: EntitySpec,
    planner: ChunkPlanner,
    write_rows: WriteRows,
    flush_rows: int = 5_000,
    buffer_bytes: int = 16 * 2**20,
) -> int:
    """Parse `body` as a JSON array of rows, writing them through `write_rows` in batches
    of about `flush_rows`; returns the number of rows. Raises `MalformedBody`."""
    batcher = _Batcher(spec, planner, write_rows, flush_rows)
    head = bytearray()
    async for data in body:
        head += data
        if len(head) > buffer_bytes:
            await _receive_streaming(bytes(head), body, batcher)
            break
    else:
        await batcher.add(_parse_whole(bytes(head)))
    await batcher.flush()
    return planner.count


def _parse_whole(data: bytes) -> list[Any]:
    if not data.strip():
        raise MalformedBody("The request body is empty; send a JSON array of rows.")
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise MalformedBody("The request body must be a JSON array of rows.")
    return rows


async def _receive_streaming(head: bytes, rest: AsyncIterator[bytes], batcher: _Batcher) -> None:
    if not head.lstrip().startswith(b"["):
        raise MalformedBody("The request body must be a JSON array of rows.")
    rows: list[Any] = []
    parser = ijson.items_coro(_Sink(rows), "item", use_float=True)
    try:
        parser.send(head)
        await batcher.add(rows)
        rows.clear()
        async for data in rest:
            parser.send(data)
            await batcher.add(rows)
            rows.clear()
        parser.close()
    except ijson.JSONError as exc:
        detail = (str(exc).strip().splitlines() or ["parse error"])[0][:200]
        raise MalformedBody(f"The request body is not valid JSON: {detail}") from exc
    await batcher.add(rows)


class _Sink:
    """ijson's target: collects parsed items into a list the caller drains."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def send(self, value: Any) -> None:
        self.items.append(value)

    def close(self) -> None:
        return None
