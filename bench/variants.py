"""Bodies the bench was not tuned for: the loader's rows written the ways other clients
write them, and a smaller batch. Each is measured once, end to end, after the main runs;
the claimpay code has no knowledge of any of them.

- compact: no blanks at all, as .NET's System.Text.Json or JavaScript's JSON.stringify
  write it;
- indented, CRLF: two-space indentation and Windows line ends, as a pretty-printing tool
  writes it (a third more bytes, most of them blanks);
- fields shuffled: every row's members in a random order;
- sparse: the key and a random half of the optional fields (smaller rows: the per-row
  costs weigh more);
- .NET dates: every date with seven fractional digits and `Z` (the round-trip format of
  .NET's `DateTime`), no spacing;
- 25,000 rows: the main body's first rows, with its spacing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.loader import PIECE_ROWS, PreparedBatch, loader_rows

Row = dict[str, Any]
KEY = "claimPromptPay_Key"
SMALL_ROWS = 25_000


@dataclass(frozen=True)
class Variant:
    """How one body is written: a label, and the function that writes a piece of rows
    (a JSON array's items, without its brackets)."""

    name: str
    label: str
    write_items: Callable[[list[Row], random.Random], bytes]
    rows: int | None = None
    """How many of the batch's rows it sends (None: all)."""


def _compact(rows: list[Row], _: random.Random) -> bytes:
    return orjson.dumps(rows)[1:-1]


def _indented_crlf(rows: list[Row], _: random.Random) -> bytes:
    text = json.dumps(rows, indent=2)[1:-1].strip("\n")
    return text.replace("\n", "\r\n").encode()


def _shuffled(rows: list[Row], rng: random.Random) -> bytes:
    out = []
    for row in rows:
        items = list(row.items())
        rng.shuffle(items)
        out.append(dict(items))
    return orjson.dumps(out)[1:-1]


def _sparse(rows: list[Row], rng: random.Random) -> bytes:
    kept = [{k: v for k, v in row.items() if k == KEY or rng.random() < 0.5} for row in rows]
    return json.dumps(kept)[1:-1].encode()


def _dotnet_dates(rows: list[Row], rng: random.Random) -> bytes:
    out = []
    for row in rows:
        row = dict(row)
        for name in ("entry_Date", "update_Date"):
            row[name] = f"{row[name][:19]}.{rng.randrange(10**7):07d}Z"
        out.append(row)
    return orjson.dumps(out)[1:-1]


def _spaced(rows: list[Row], _: random.Random) -> bytes:
    return json.dumps(rows)[1:-1].encode()


VARIANTS = (
    Variant("compact", "compact (no blanks)", _compact),
    Variant("indented_crlf", "indented, CRLF", _indented_crlf),
    Variant("shuffled", "fields shuffled", _shuffled),
    Variant("sparse", "sparse (key + half the optional fields)", _sparse),
    Variant("dotnet_dates", ".NET dates (7 fractional digits, Z)", _dotnet_dates),
    Variant("small", "json.dumps spacing, fewer rows", _spaced, SMALL_ROWS),
)


def prepare_variant(directory: Path, variant: Variant, batch: PreparedBatch) -> PreparedBatch:
    """Write `variant-<name>.json`: the batch's rows (the same keys, so half exist before
    it is sent) written the variant's way, a piece at a time."""
    count = batch.rows if variant.rows is None else min(variant.rows, batch.rows)
    path = directory / f"variant-{variant.name}.json"
    rng = random.Random(f"{variant.name}-{batch.seed}")
    rows = loader_rows(count, batch.first_key, batch.seed)
    with path.open("wb") as body:
        body.write(b"[")
        for offset in range(0, count, PIECE_ROWS):
            piece = [next(rows) for _ in range(min(PIECE_ROWS, count - offset))]
            body.write((b"" if offset == 0 else b",") + variant.write_items(piece, rng))
        body.write(b"]")
    return PreparedBatch(
        count, batch.first_key, batch.seed, path, batch.copy_path, path.stat().st_size
    )
