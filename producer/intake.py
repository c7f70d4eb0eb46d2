"""Intake: parse a JSON array of rows and store it chunk by chunk.

The body is cut into runs of whole rows of about `buffer_bytes` as it arrives
(`producer.runs`); each run is parsed in one `orjson` call, checked, encoded and written,
so any body is parsed at the same speed in bounded memory. Rows are only shape-checked
here (is it an array); each row is validated by the worker.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from claimpay.entities import EntitySpec
from claimpay.rows import usable_key, usable_keys
from producer.jsonguard import RowGuard, count_keys
from producer.limits import (
    BodyTooLarge,
    DuplicateKeys,
    IntakeLimits,
    TooManyRows,
    setting_default,
    too_large_detail,
)
from producer.runs import MalformedBody, RunCutter

__all__ = ["ChunkPlanner", "MalformedBody", "WriteRows", "receive_array"]

RUN_BYTES = setting_default("intake_buffer_bytes")
"""The default size of the runs parsed at once (`CLAIMPAY_INTAKE_BUFFER_BYTES`)."""


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

    def fresh(self, keys: list[int | str]) -> bool:
        """True when none of `keys` repeats another of them or a key placed before."""
        return len(set(keys)) == len(keys) and self._chunk_of_key.keys().isdisjoint(keys)

    def place_home(self, count: int, keys: Iterable[int | str] = ()) -> int:
        """Place the next `count` rows, all of one chunk, with their `keys` (`fresh`), in
        that chunk (their home); returns it."""
        chunk = self.count // self.size
        if count < 1 or (self.count + count - 1) // self.size != chunk:
            raise ValueError(f"{count} rows from row {self.count} do not share one chunk")
        self.count += count
        self.rows_per_chunk[chunk] += count
        self._chunk_of_key.update(dict.fromkeys(keys, chunk))
        return chunk

    def chunks(self) -> list[tuple[int, int]]:
        """`(chunk, row count)` of every non-empty chunk, in order."""
        return sorted((c, n) for c, n in self.rows_per_chunk.items() if n)


STORED_ROW_OVERHEAD = 16
"""Bytes a stored row may take beyond its share of the body: its `[index, ...]` wrapping
(the rows of a job hold at most `max_body_bytes` + this many bytes per row in Redis)."""

WriteRows = Callable[[dict[int, list[bytes]], dict[int, int]], None]
"""Stores `{chunk: texts}` and `{index: chunk}` of the moved rows: each text is one encoded
`[index, row]` item or a comma-separated run of them (`JobStore.write_rows`)."""


@dataclass
class _Writer:
    """Writes a batch of rows in a thread of its own while the intake parses the next one;
    one batch at a time."""

    write_rows: WriteRows
    _pool: ThreadPoolExecutor | None = None
    _writing: Future[None] | None = None

    async def write(
        self, rows: dict[int, list[bytes]], moved: dict[int, int], last: bool = False
    ) -> None:
        """Start writing `rows` once the batch before is written (`last`: write them and
        return when done, with no thread of its own: a small body's only batch)."""
        await self.wait()
        if last:
            await anyio.to_thread.run_sync(self.write_rows, rows, moved)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="claimpay-intake")
        self._writing = self._pool.submit(self.write_rows, rows, moved)

    async def wait(self) -> None:
        """Until the batch being written is stored; raises what writing it raised."""
        writing, self._writing = self._writing, None
        if writing is not None and writing.done():
            writing.result()
        elif writing is not None:
            await anyio.to_thread.run_sync(writing.result)

    async def settle(self) -> None:
        """Wait for the batch being written whatever happens (cancellation included), so
        nothing lands after the caller has discarded the job; its error is not raised."""
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await self.wait()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)


@dataclass
class _Batcher:
    """Places rows, encodes them `[index, row]` (checked by a `RowGuard`), and writes them
    every `flush_rows`; refuses the row after the `max_rows`-th."""

    spec: EntitySpec
    planner: ChunkPlanner
    write_rows: _Writer
    flush_rows: int
    limits: IntakeLimits
    guard: RowGuard
    pending: dict[int, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    moved: dict[int, int] = field(default_factory=dict)
    buffered: int = 0
    stored_bytes: int = 0

    def _count_stored(self, text: bytes) -> None:
        """Refuse rows whose stored form outgrows the body limit (`STORED_ROW_OVERHEAD`)."""
        self.stored_bytes += len(text) + 1
        allowed = self.limits.max_body_bytes + STORED_ROW_OVERHEAD * self.planner.count
        if self.stored_bytes > allowed:
            raise BodyTooLarge(
                f"The rows take more than the body limit of {self.limits.max_body_bytes} "
                "bytes once stored (numbers such as 1e15 are stored written out)."
            )

    async def add(self, rows: Iterable[Any]) -> None:
        for row in rows:
            if self.planner.count >= self.limits.max_rows:
                raise self._too_many()
            index, chunk, is_moved = self.planner.place(usable_key(self.spec, row))
            item = self.guard.encode(index, row)
            self._count_stored(item)
            self.pending[chunk].append(item)
            if is_moved:
                self.moved[index] = chunk
            self.buffered += 1
            if self.buffered >= self.flush_rows:
                await self.flush()

    async def add_run(self, text: bytes, rows: list[Any]) -> None:
        """The rows of one run, parsed from `text`: a chunk's share at a time, checked and
        encoded in one call when none of its keys was seen before, else row by row; then
        the member names in `text` are counted against the members parsed."""
        if self.planner.count + len(rows) > self.limits.max_rows:
            raise self._too_many()
        members = self.guard.members
        size = self.planner.size
        all_flat = True
        start = 0
        while start < len(rows):
            first = self.planner.count
            part = rows[start : start + size - first % size]
            start += len(part)
            keys = usable_keys(self.spec, part)
            text_part = self.guard.encode_flat(first, part) if self.planner.fresh(keys) else None
            if text_part is None:
                all_flat = False
                await self.add(part)
                continue
            self.pending[self.planner.place_home(len(part), keys)].append(text_part)
            self._count_stored(text_part)
            self.buffered += len(part)
            if self.buffered >= self.flush_rows:
                await self.flush()
        _check_names(text, rows, self.guard.members - members, all_flat)

    async def flush(self, last: bool = False) -> None:
        """Write the rows placed so far; the `last` time, wait until all are written."""
        if self.buffered:
            rows, moved = dict(self.pending), dict(self.moved)
            self.pending.clear()
            self.moved.clear()
            self.buffered = 0
            await self.write_rows.write(rows, moved, last)
        elif last:
            await self.write_rows.wait()

    def _too_many(self) -> TooManyRows:
        return TooManyRows(f"The body has more than the limit of {self.limits.max_rows} rows.")


def _check_names(text: bytes, rows: list[Any], members: int, all_flat: bool) -> None:
    """`DuplicateKeys` when `text` names more members than the `members` parsed from it.

    A parser keeps one member of a repeated name, so a repeat shows as one name too many.
    When every row is a flat object, each comma of the text but the `len(rows) - 1`
    between rows introduces a member after an object's first, so the commas bound the
    names from above (a comma in a string only adds to the bound): one byte count settles
    most runs; `count_keys` counts exactly the rest."""
    if all_flat:
        bound = text.count(b",") - (len(rows) - 1) + len(rows) - rows.count({})
        if bound <= members:
            return
    if count_keys(text, members) > members:
        raise DuplicateKeys("An object in the body repeats a member name.")


async def receive_array(
    body: AsyncIterator[bytes],
    spec: EntitySpec,
    planner: ChunkPlanner,
    write_rows: WriteRows,
    flush_rows: int = 5_000,
    buffer_bytes: int = RUN_BYTES,
    limits: IntakeLimits | None = None,
) -> int:
    """Parse `body` as a JSON array of rows, in runs of about `buffer_bytes`, writing them
    through `write_rows` in batches of about `flush_rows` (in a thread, one batch while the
    next is parsed; all written on return); returns the number of rows.
    Raises `MalformedBody`, or a `BodyRejected` at the first limit of `limits` the body
    crosses."""
    limits = limits or IntakeLimits()
    writer = _Writer(write_rows)
    batcher = _Batcher(
        spec,
        planner,
        writer,
        flush_rows,
        limits,
        RowGuard(limits.max_row_bytes, limits.max_depth),
    )
    cutter = RunCutter(buffer_bytes, limits.max_row_bytes, limits.max_depth)
    try:
        async for data in _bounded(body, limits.max_body_bytes):
            for text, rows in cutter.feed(data):
                await batcher.add_run(text, rows)
        for text, rows in cutter.finish():
            await batcher.add_run(text, rows)
        await batcher.flush(last=True)
    except BaseException:
        await writer.settle()
        raise
    finally:
        writer.close()
    return planner.count


async def _bounded(body: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    received = 0
    async for data in body:
        received += len(data)
        if received > max_bytes:
            raise BodyTooLarge(too_large_detail(max_bytes))
        yield data
