"""Intake parses the body in runs of whole rows, with the same result whatever their size."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest

from claimpay.entities import CLAIM_PROMPT_PAY
from producer.intake import ChunkPlanner, MalformedBody, receive_array
from producer.limits import BodyTooLarge, IntakeLimits
from tests.factories import make_row, make_rows

RUN_SIZES = [0, 40, 10**9]
RUN_IDS = ["a run per row", "short runs", "one run"]


def receive(
    body: bytes,
    buffer_bytes: int,
    piece: int = 7,
    chunk_size: int = 3,
    limits: IntakeLimits | None = None,
) -> Any:
    stored: dict[int, list[Any]] = {}
    moved: dict[int, int] = {}
    planner = ChunkPlanner(chunk_size)

    def write(rows: dict[int, list[bytes]], moved_now: dict[int, int]) -> None:
        for chunk, items in rows.items():
            stored.setdefault(chunk, []).extend(orjson.loads(b"[" + b",".join(items) + b"]"))
        moved.update(moved_now)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), piece):
            yield body[start : start + piece]

    async def run() -> int:
        return await receive_array(
            pieces(),
            CLAIM_PROMPT_PAY,
            planner,
            write,
            flush_rows=4,
            buffer_bytes=buffer_bytes,
            limits=limits,
        )

    total = anyio.run(run)
    return total, stored, moved, planner.chunks()


@pytest.mark.parametrize("buffer_bytes", RUN_SIZES, ids=RUN_IDS)
def test_rows_are_placed_in_chunks_with_repeated_keys_kept_together(buffer_bytes: int) -> None:
    rows = [*make_rows(7), make_row(2, tax_ID="again"), "junk", {"claimPromptPay_Key": "x"}]
    total, stored, moved, chunks = receive(orjson.dumps(rows), buffer_bytes)
    assert total == 10
    assert stored[0] == [[0, rows[0]], [1, rows[1]], [2, rows[2]], [7, rows[7]]]
    assert stored[2] == [[6, rows[6]], [8, "junk"]]
    assert stored[3] == [[9, rows[9]]]
    assert moved == {7: 0}
    assert chunks == [(0, 4), (1, 3), (2, 2), (3, 1)]


@pytest.mark.parametrize("buffer_bytes", RUN_SIZES, ids=RUN_IDS)
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'[{"a": 1}, ', "not valid JSON"),
        (b'{"a": 1}', "JSON array"),
        (b"[1, 2] 3", "not valid JSON"),
        (b"[NaN]", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_refused(buffer_bytes: int, body: bytes, detail: str) -> None:
    with pytest.raises(MalformedBody, match=detail):
        receive(body, buffer_bytes)


def test_an_empty_body_is_refused() -> None:
    with pytest.raises(MalformedBody, match="empty"):
        receive(b"  ", 10**9)


@pytest.mark.parametrize("buffer_bytes", RUN_SIZES, ids=RUN_IDS)
def test_rows_with_unique_keys_fill_their_home_chunks_in_order(buffer_bytes: int) -> None:
    rows = [*make_rows(7), {"claimPromptPay_Key": 8, "group_ID": "{[}]"}, "junk", {"x": [1]}]
    total, stored, moved, chunks = receive(orjson.dumps(rows), buffer_bytes)
    assert total == 10
    assert stored == {
        chunk: [[index, rows[index]] for index in range(chunk * 3, min(chunk * 3 + 3, 10))]
        for chunk in range(4)
    }
    assert moved == {}
    assert chunks == [(0, 3), (1, 3), (2, 3), (3, 1)]


def test_planner_places_a_run_of_rows_in_their_home_chunk_only() -> None:
    planner = ChunkPlanner(3)
    assert planner.place_home(3) == 0
    assert planner.place_home(2) == 1
    with pytest.raises(ValueError, match="one chunk"):
        planner.place_home(2)
    assert planner.place_home(1) == 1
    assert planner.chunks() == [(0, 3), (1, 3)]


def test_keys_placed_a_chunk_at_a_time_pull_their_later_repeats_in() -> None:
    planner = ChunkPlanner(3)
    assert planner.fresh([1, 2, 3])
    assert planner.place_home(3, [1, 2, 3]) == 0
    assert not planner.fresh([4, 2])
    assert not planner.fresh([5, 5])
    assert planner.place(2) == (3, 0, True)


@pytest.mark.parametrize("buffer_bytes", [0, 333, 4096, 10**9])
def test_a_large_spaced_body_is_stored_row_for_row_across_runs(buffer_bytes: int) -> None:
    """Rows with every field, `json.dumps` spacing, keys repeated far apart: the same rows
    in the same places, whether cut into hundreds of runs or parsed in one."""
    rows: list[Any] = [
        make_row(n % 700, tax_ID=f"{n}, }}, {{", entry_User="loader") for n in range(1000)
    ]
    rows[500] = {"claimPromptPay_Key": 3, "group_ID": {"nested": [1, {"a": "}, {"}]}}
    body = json.dumps(rows).encode()
    total, stored, moved, chunks = receive(body, buffer_bytes, piece=4093, chunk_size=100)
    assert total == 1000
    first_chunk: dict[int, int] = {}
    expected: dict[int, list[Any]] = {}
    for index, row in enumerate(rows):
        chunk = first_chunk.setdefault(row["claimPromptPay_Key"], index // 100)
        expected.setdefault(chunk, []).append([index, row])
    assert stored == expected
    assert moved == {i: c for c, items in expected.items() for i, _ in items if i // 100 != c}
    assert chunks == sorted((c, len(items)) for c, items in expected.items())


def _feed(body: bytes, write: Any, piece: int = 5_000) -> int:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), piece):
            yield body[start : start + piece]

    async def run() -> int:
        return await receive_array(
            pieces(), CLAIM_PROMPT_PAY, ChunkPlanner(10), write, flush_rows=10, buffer_bytes=500
        )

    return anyio.run(run)


def test_a_refused_body_returns_only_once_the_batch_being_written_is_stored() -> None:
    """Batches are written in a thread while the next run is parsed; the caller discards
    the job when the intake fails, so no write may land after that."""
    release, finished = threading.Event(), threading.Event()

    def write(rows: dict[int, list[bytes]], moved: dict[int, int]) -> None:
        release.wait(5)
        finished.set()

    threading.Timer(0.2, release.set).start()
    body = orjson.dumps(make_rows(20))[:-1] + b", nonsense]"  # a batch written, then the fault
    with pytest.raises(MalformedBody):
        _feed(body, write)
    assert finished.is_set()


def test_a_failed_write_fails_the_intake() -> None:
    calls: list[int] = []

    def write(rows: dict[int, list[bytes]], moved: dict[int, int]) -> None:
        calls.append(len(rows))
        if len(calls) == 2:
            raise ConnectionError("the job store is gone")

    with pytest.raises(ConnectionError):
        _feed(orjson.dumps(make_rows(200)), write)
    assert len(calls) == 2


@pytest.mark.parametrize("buffer_bytes", RUN_SIZES, ids=RUN_IDS)
def test_rows_whose_stored_form_outgrows_the_body_limit_are_refused(buffer_bytes: int) -> None:
    # `1e15` is stored written out, `1000000000000000.0`: 4.5 times its text.
    row = b'{"claimPromptPay_Key": 1, "x": [' + b",".join([b"1e15"] * 200) + b"]}"
    body = b"[" + b",".join([row] * 20) + b"]"
    limits = IntakeLimits(max_body_bytes=len(body) + 100)
    with pytest.raises(BodyTooLarge, match="once stored"):
        receive(body, buffer_bytes, limits=limits)
    plain = b"[" + b",".join([row.replace(b"1e15", b"7")] * 20) + b"]"
    total, _, _, _ = receive(plain, buffer_bytes, limits=IntakeLimits(len(plain)))
    assert total == 20
