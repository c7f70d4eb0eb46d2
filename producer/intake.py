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
from claimpay.rows import usable_key, usable_keys
from producer.jsonguard import JsonScanner, RowGuard, count_keys
from producer.limits import (
    BodyTooLarge,
    DuplicateKeys,
    IntakeLimits,
    RowTooLarge,
    TooManyRows,
    too_large_detail,
)


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

    def place_home(self, count: int) -> int:
        """Place the next `count` rows, all of one chunk and none with a key seen before or
        after, in that chunk (their home); returns it."""
        chunk = self.count // self.size
        if count < 1 or (self.count + count - 1) // self.size != chunk:
            raise ValueError(f"{count} rows from row {self.count} do not share one chunk")
        self.count += count
        self.rows_per_chunk[chunk] += count
        return chunk

    def chunks(self) -> list[tuple[int, int]]:
        """`(chunk, row count)` of every non-empty chunk, in order."""
        return sorted((c, n) for c, n in self.rows_per_chunk.items() if n)


WriteRows = Callable[[dict[int, list[bytes]], dict[int, int]], None]
"""Stores `{chunk: texts}` and `{index: chunk}` of the moved rows: each text is one encoded
`[index, row]` item or a comma-separated run of them (`JobStore.write_rows`)."""


@dataclass
class _Batcher:
    """Places rows, encodes them `[index, row]` (checked by a `RowGuard`), and writes them
    every `flush_rows`; refuses the row after the `max_rows`-th."""

    spec: EntitySpec
    planner: ChunkPlanner
    write_rows: WriteRows
    flush_rows: int
    limits: IntakeLimits
    guard: RowGuard
    pending: dict[int, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    moved: dict[int, int] = field(default_factory=dict)
    buffered: int = 0

    async def add(self, rows: Iterable[Any]) -> None:
        for row in rows:
            if self.planner.count >= self.limits.max_rows:
                raise TooManyRows(
                    f"The body has more than the limit of {self.limits.max_rows} rows."
                )
            index, chunk, is_moved = self.planner.place(usable_key(self.spec, row))
            self.pending[chunk].append(self.guard.encode(index, row))
            if is_moved:
                self.moved[index] = chunk
            self.buffered += 1
            if self.buffered >= self.flush_rows:
                await self.flush()

    async def add_whole(self, rows: list[Any]) -> None:
        """All rows of a body: when no key repeats, a chunk's rows at a time (checked and
        encoded in one call), else row by row."""
        if self.planner.count or len(rows) > self.limits.max_rows or _repeats(self.spec, rows):
            await self.add(rows)
            return
        size = self.planner.size
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            text = self.guard.encode_flat(start, part)
            if text is None:
                await self.add(part)
                continue
            self.pending[self.planner.place_home(len(part))].append(text)
            self.buffered += len(part)
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
    limits: IntakeLimits | None = None,
) -> int:
    """Parse `body` as a JSON array of rows, writing them through `write_rows` in batches
    of about `flush_rows`; returns the number of rows. Raises `MalformedBody`, or a
    `BodyRejected` at the first limit of `limits` the body crosses."""
    limits = limits or IntakeLimits()
    batcher = _Batcher(
        spec,
        planner,
        write_rows,
        flush_rows,
        limits,
        RowGuard(limits.max_row_bytes, limits.max_depth),
    )
    names = await _receive(_bounded(body, limits.max_body_bytes), batcher, buffer_bytes)
    if names > batcher.guard.members:
        raise DuplicateKeys("An object in the body repeats a member name.")
    await batcher.flush()
    return planner.count


async def _receive(body: AsyncIterator[bytes], batcher: _Batcher, buffer_bytes: int) -> int:
    """Buffer up to `buffer_bytes` and parse that whole (fast), or stream a larger body.
    Returns the number of member names in the text (see `count_keys`)."""
    head = bytearray()
    started = False
    async for data in body:
        if not started and data.strip():  # refuse garbage at its first byte
            if not data.lstrip().startswith(b"["):
                raise MalformedBody(NOT_AN_ARRAY)
            started = True
        head += data
        if len(head) > buffer_bytes:
            return await _receive_streaming(head, body, batcher)
    if _dense(head):
        return await _receive_streaming(head, _nothing(), batcher)
    await batcher.add_whole(_parse_whole(head))
    return count_keys(head, batcher.guard.members)


def _repeats(spec: EntitySpec, rows: list[Any]) -> bool:
    """True when two rows share a usable key (`usable_key`)."""
    keys = usable_keys(spec, rows)
    return len(set(keys)) != len(keys)


NOT_AN_ARRAY = "The request body must be a JSON array of rows."
DENSE_BYTES_PER_VALUE = 8
"""Rows take ~20 bytes per value; a body with fewer is parsed as a stream, where the row
limit stops it early, rather than whole (a whole parse builds every value first)."""


def _dense(data: bytes | bytearray) -> bool:
    values = data.count(b",") + data.count(b"{") + data.count(b"[")
    return values * DENSE_BYTES_PER_VALUE > len(data)


async def _bounded(body: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    received = 0
    async for data in body:
        received += len(data)
        if received > max_bytes:
            raise BodyTooLarge(too_large_detail(max_bytes))
        yield data


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _parse_whole(data: bytes | bytearray) -> list[Any]:
    if not data.strip():
        raise MalformedBody("The request body is empty; send a JSON array of rows.")
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise MalformedBody(NOT_AN_ARRAY)
    return rows


async def _receive_streaming(
    head: bytes | bytearray, rest: AsyncIterator[bytes], batcher: _Batcher
) -> int:
    """Parse incrementally, a slice at a time; returns the number of member names."""
    if not head.lstrip().startswith(b"["):
        raise MalformedBody(NOT_AN_ARRAY if head.strip() else "The request body is empty.")
    rows: list[Any] = []
    parser = ijson.items_coro(_Sink(rows), "item", use_float=False)
    scanner = JsonScanner(batcher.limits.max_depth)
    try:
        await _feed_slices(_chain(head, rest), parser, scanner, rows, batcher)
        parser.close()
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"The request body is not valid JSON: {_first_line(exc)}") from exc
    await batcher.add(rows)
    return scanner.keys


async def _feed_slices(
    body: AsyncIterator[bytes | bytearray],
    parser: Any,
    scanner: JsonScanner,
    rows: list[Any],
    batcher: _Batcher,
) -> None:
    """Feed the parser slice by slice, the scanner first (deep nesting costs the parser
    dearly); stop as soon as one row has taken more than `max_row_bytes` without ending."""
    limit = batcher.limits.max_row_bytes
    slice_bytes = max(1024, min(64 * 1024, limit // 4))
    unfinished = 0
    async for data in body:
        for start in range(0, len(data), slice_bytes):
            piece = bytes(data[start : start + slice_bytes])
            scanner.feed(piece)
            parser.send(piece)
            unfinished = 0 if rows else unfinished + len(piece)
            if unfinished > limit + slice_bytes:
                raise RowTooLarge(f"A row is larger than the limit of {limit} bytes.")
            await batcher.add(rows)
            rows.clear()


def _first_line(exc: Exception) -> str:
    """The parser's message without the excerpt of the body it may quote below it."""
    message = exc.args[0] if exc.args else ""
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    return (str(message).strip().splitlines() or ["parse error"])[0][:200]


async def _chain(
    head: bytes | bytearray, rest: AsyncIterator[bytes]
) -> AsyncIterator[bytes | bytearray]:
    yield head
    async for data in rest:
        yield data


class _Sink:
    """ijson's target: collects parsed items into a list the caller drains."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def send(self, value: Any) -> None:
        self.items.append(value)

    def close(self) -> None:
        return None
