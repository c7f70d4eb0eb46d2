"""The intake against a reference parser on generated bodies: whatever the spacing, the
strings, the nesting, the run size and the pieces the body arrives in, it stores exactly
the rows `json.loads` reads, in order, in the chunks the planner's rule gives, and it
refuses exactly the bodies the reference refuses (malformed, a repeated member name,
nested too deep)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from claimpay.entities import CLAIM_PROMPT_PAY
from producer.intake import ChunkPlanner, MalformedBody, receive_array
from producer.limits import BodyRejected, DuplicateKeys, IntakeLimits, RowTooLarge, TooDeep

MAX_DEPTH = 4
CHUNK_SIZE = 3
KEY = "claimPromptPay_Key"
TRICKY = [
    "}", "]", ",", '"', "\\", "}, {", '"}, {"a": 1}', "},", "{[", "é", "\u2028", "😀", "\x00",
    " : ", "a\nb", "\\u0041", "/",
]  # fmt: skip
run_sizes = st.integers(0, 400) | st.sampled_from([0, 4096, 256 * 1024, 10**9])
"""Runs from none (an element at a time, found by the exact scan) to the whole body."""
BLANKS = ["", "", "", " ", "\n", "\r\n  ", "\t", "  \n\t"]


@dataclass(frozen=True)
class Pairs:
    """An object as written: its members in order, a name possibly repeated."""

    items: tuple[tuple[str, Any], ...]


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(TRICKY)
    | st.text(max_size=6)
)
names = st.sampled_from([KEY, "tax_ID", "group_ID", "entry_User", "x", "}", 'a"b', "é"])
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(st.tuples(names, inner), max_size=3).map(lambda x: Pairs(tuple(x)))
    ),
    max_leaves=6,
)
flat_rows = st.lists(
    st.tuples(names, st.integers(0, 6) | scalars),
    max_size=6,
).map(lambda x: Pairs(tuple(x)))
keyed_rows = st.tuples(st.integers(0, 8), st.lists(st.tuples(names, scalars), max_size=4)).map(
    lambda x: Pairs(((KEY, x[0]), *x[1]))
)
elements = st.one_of(keyed_rows, keyed_rows, flat_rows, values)

DEFECTS = [
    None, None, None, None, "truncate", "insert", "garbage after", "trailing comma",
    "object", "nan", "invalid utf-8", "deep", "empty", "missing comma",
]  # fmt: skip


def write(value: Any, rng: random.Random) -> str:
    """`value` as JSON text with random blanks around tokens and random escaping."""

    def blank() -> str:
        return rng.choice(BLANKS)

    if isinstance(value, Pairs):
        members = [
            blank() + write(name, rng) + blank() + ":" + blank() + write(item, rng) + blank()
            for name, item in value.items
        ]
        return "{" + ",".join(members) + blank() + "}"
    if isinstance(value, list):
        return "[" + ",".join(blank() + write(item, rng) + blank() for item in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=rng.random() < 0.3)
    return json.dumps(value)


def damage(body: bytes, defect: str | None, rng: random.Random) -> bytes:
    at = rng.randrange(len(body) + 1)
    if defect == "truncate":
        return body[: rng.randrange(len(body))]
    if defect == "insert":
        return (
            body[:at]
            + rng.choice([b",", b"]", b"}", b"{", b"[", b":", b'"', b"\\", b"x"])
            + body[at:]
        )
    if defect == "garbage after":
        return body + rng.choice([b" x", b"]", b",", b"[]", b"{}"])
    if defect == "trailing comma":
        return body[: body.rindex(b"]")] + b",]"
    if defect == "object":
        return b'{"rows": ' + body + b"}"
    if defect == "nan":
        return body[:1] + rng.choice([b"NaN,", b"Infinity,", b"-Infinity,"]) + body[1:]
    if defect == "invalid utf-8":
        return body[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + body[at:]
    if defect == "deep":
        return body[:1] + b"[" * MAX_DEPTH + b"1" + b"]" * MAX_DEPTH + b"," + body[1:]
    if defect == "empty":
        return rng.choice([b"", b"  \n"])
    if defect == "missing comma":
        return body.replace(b"}", b"} ", 1).replace(b"} ,", b" ", 1)
    return body


def reference(body: bytes) -> list[Any] | set[type[Exception]]:
    """The rows `json.loads` reads, or what the intake may refuse the body with."""
    repeated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        repeated = repeated or len({name for name, _ in items}) != len(items)
        # a repeated name drops all but its last value from the dict: check each value's
        # text here (an unpaired surrogate in a dropped one is still a fault of the body)
        orjson.dumps(items)
        return dict(items)

    def constant(name: str) -> Any:
        raise ValueError(name)

    try:
        value = json.loads(body.decode(), object_pairs_hook=pairs, parse_constant=constant)
        orjson.dumps(value)  # json.loads takes an unpaired surrogate (`"\\ud800"`): no text
    except (ValueError, TypeError):  # UnicodeDecodeError, orjson.JSONEncodeError too
        # refused; a limit may show in the part read before the fault is reached
        return {MalformedBody, DuplicateKeys, TooDeep}
    if not isinstance(value, list):
        return {MalformedBody}
    reasons: set[type[Exception]] = set()
    if depth(value) > MAX_DEPTH:
        reasons.add(TooDeep)
    if repeated:
        reasons.add(DuplicateKeys)
    return reasons or value


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def pieces(body: bytes, rng: random.Random) -> list[bytes]:
    longest = rng.choice([1, 2, 5, 64, 10**6])
    out, start = [], 0
    while start < len(body):
        size = rng.randint(1, longest)
        out.append(body[start : start + size])
        start += size
    return out


@dataclass
class Received:
    total: int
    items: dict[int, tuple[int, Any]]
    """index -> (chunk, row) as stored."""
    moved: dict[int, int]
    chunks: list[tuple[int, int]]


def receive(
    parts: list[bytes], run_bytes: int, limits: IntakeLimits | None = None
) -> Received | Exception:
    """What the intake stores from the body in `parts`, or why it refuses it."""
    items: dict[int, tuple[int, Any]] = {}
    moved: dict[int, int] = {}
    planner = ChunkPlanner(CHUNK_SIZE)

    def write_rows(rows: dict[int, list[bytes]], moved_now: dict[int, int]) -> None:
        for chunk, texts in rows.items():
            for index, row in orjson.loads(b"[" + b",".join(texts) + b"]"):
                assert index not in items
                items[index] = (chunk, row)
        moved.update(moved_now)

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async def run() -> int:
        return await receive_array(
            body(),
            CLAIM_PROMPT_PAY,
            planner,
            write_rows,
            flush_rows=4,
            buffer_bytes=run_bytes,
            limits=limits or IntakeLimits(max_row_bytes=10**6, max_depth=MAX_DEPTH),
        )

    try:
        total = anyio.run(run)
    except (MalformedBody, BodyRejected) as exc:
        return exc
    return Received(total, items, moved, planner.chunks())


def placement(rows: list[Any]) -> tuple[dict[int, int], dict[int, int]]:
    """The chunk of every row, and the moved ones: a key's rows join its first chunk."""
    first: dict[Any, int] = {}
    chunk_of: dict[int, int] = {}
    for index, row in enumerate(rows):
        home = index // CHUNK_SIZE
        key = row.get(KEY) if isinstance(row, dict) else None
        usable = type(key) is int and -(2**31) <= key < 2**31
        chunk_of[index] = first.setdefault(key, home) if usable else home
    moved = {index: chunk for index, chunk in chunk_of.items() if chunk != index // CHUNK_SIZE}
    return chunk_of, moved


@settings(max_examples=400, deadline=None)
@given(
    rows=st.lists(elements, max_size=12),
    defect=st.sampled_from(DEFECTS),
    run_bytes=run_sizes,
    seed=st.integers(0, 2**32),
)
def test_the_intake_reads_what_a_reference_parser_reads(
    rows: list[Any], defect: str | None, run_bytes: int, seed: int
) -> None:
    rng = random.Random(seed)
    text = rng.choice(BLANKS) + write(rows, rng) + rng.choice(BLANKS)
    body = damage(text.encode(), defect, rng)
    expected = reference(body)
    parts = pieces(body, rng)
    got = receive(parts, run_bytes)
    if isinstance(got, Exception):
        assert isinstance(expected, set), (body, got)
        assert type(got) in expected, (body, got)
        return
    assert isinstance(expected, list), body
    assert got.total == len(expected)
    assert sorted(got.items) == list(range(len(expected)))
    assert [got.items[i][1] for i in range(len(expected))] == expected
    chunk_of, moved = placement(expected)
    assert {i: chunk for i, (chunk, _) in got.items.items()} == chunk_of
    assert got.moved == moved
    counts: dict[int, int] = {}
    for chunk in chunk_of.values():
        counts[chunk] = counts.get(chunk, 0) + 1
    assert got.chunks == sorted(counts.items())


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=5),
    run_bytes=run_sizes,
    seed=st.integers(0, 2**32),
    ends=st.booleans(),
)
def test_a_row_is_refused_when_its_stored_text_passes_the_limit(
    sizes: list[int], run_bytes: int, seed: int, ends: bool
) -> None:
    """Whether the body ends or not, a row over the limit is refused and no other."""
    rng = random.Random(seed)
    rows = [{KEY: n, "tax_ID": "7" * size} for n, size in enumerate(sizes)]
    body = write(rows, rng).encode()
    if not ends:
        body = body[: body.rindex(b"7") + 1] if b"7" in body else body[:-1]
    limit = 256
    over = any(len(orjson.dumps(row)) > limit for row in rows)
    got = receive(pieces(body, rng), run_bytes, IntakeLimits(max_row_bytes=limit))
    if isinstance(got, RowTooLarge):
        assert over or not ends
    elif isinstance(got, MalformedBody):
        assert not ends
    else:
        assert isinstance(got, Received), got
        assert ends
        assert not over


def character_depth(text: str) -> int:
    """The deepest nesting of JSON `text`, walking it a character at a time."""
    level = peak = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            level += 1
            peak = max(peak, level)
        elif char in "]}":
            level -= 1
    return peak


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.integers() | st.sampled_from(TRICKY) | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(TRICKY) | st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=25,
    ),
    run_bytes=run_sizes,
    seed=st.integers(0, 2**32),
    indent=st.sampled_from([None, 1]),
)
def test_nesting_is_refused_exactly_past_the_limit(
    value: Any, run_bytes: int, seed: int, indent: int | None
) -> None:
    text = json.dumps([value, value], indent=indent)
    rng = random.Random(seed)
    for max_depth in (2, 3, 5):
        limits = IntakeLimits(max_row_bytes=10**6, max_depth=max_depth)
        got = receive(pieces(text.encode(), rng), run_bytes, limits)
        assert isinstance(got, TooDeep) == (character_depth(text) > max_depth), (text, got)
        assert isinstance(got, TooDeep | Received), got
