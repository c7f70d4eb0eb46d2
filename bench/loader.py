"""The bodies users send: every field a loading tool sends, serialized with ordinary
`json.dumps` spacing; and the same rows as a COPY file for the limit.

A batch is written once, before anything is timed, to two files side by side: the request
body and the table's column values in PostgreSQL's COPY text format. Both come from one
pass over the rows, so the limit loads exactly what claimpay is sent.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.rows import COLUMNS, JSON_TO_COLUMN
from claimpay.entities.base import as_naive_utc

PIECE_ROWS = 2_000
SPACING = "json.dumps spacing"
"""How the bodies are serialized: `", "` between items, `": "` after names."""
LOADER_USERS = ("etl-nightly", "claims-sync", "pp-rules-import")
"""`entry_User`/`update_User` values a loading tool writes (under the 20-character limit
of `update_User`)."""
EPOCH = datetime(2026, 11, 30, 8, 0, 0)
AUDIT_JSON_TO_COLUMN = {
    "entry_Date": "entry_date",
    "entry_User": "entry_user",
    "update_Date": "update_date",
    "update_User": "update_user",
}
FIELD_TO_COLUMN = JSON_TO_COLUMN | AUDIT_JSON_TO_COLUMN


_PLANS = ("PPO", "HMO", "EPO", "HDHP")
_DURATIONS = ((14, "D"), (15, "D"), (30, "D"), (45, "D"), (1, "M"), (1, "Y"))
_OFFSETS = tuple((timedelta(hours=h), f"{h:+03d}:00") for h in (-5, -4, 1, 2))
_TEN_YEARS_S = 3650 * 86_400


def loader_item(key: int, rng: random.Random) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """One row with every field of the seed, in the seed's order, as a loading tool sends
    it (audit dates as ISO 8601 text, some naive (taken as UTC), some with an offset), and
    its values as the table stores them, in `COLUMNS` order (dates as naive UTC). Three
    random draws a row: a 1,000,000-row body is written in seconds."""
    a, b, c = rng.getrandbits(64), rng.getrandbits(64), rng.getrandbits(32)
    duration, unit = _DURATIONS[a % 6]
    a //= 6
    group, division = f"GRP{a % 1000:03d}", f"DIV{a // 1000 % 100:02d}"
    plan = _PLANS[a // 100_000 % 4]
    a //= 400_000
    tax = str(10**8 + a % (9 * 10**8))
    a //= 9 * 10**8
    entry_user, update_user = LOADER_USERS[a % 3], LOADER_USERS[a // 3 % 3]
    entered = EPOCH - timedelta(seconds=b % _TEN_YEARS_S)
    updated = entered + timedelta(seconds=b // _TEN_YEARS_S % 10**8, milliseconds=c % 1000)
    c //= 1000
    row = {
        "claimPromptPay_Key": key,
        "division_ID": division,
        "entry_Date": _iso(entered, c % 12),
        "entry_User": entry_user,
        "group_ID": group,
        "plan_ID": plan,
        "prompt_Pay_Duration": duration,
        "prompt_Pay_Duration_Type": unit,
        "tax_ID": tax,
        "update_Date": _iso(updated, c // 12 % 12),
        "update_User": update_user,
    }
    values = (key, division, entered, entry_user, group, plan, duration, unit, tax, updated)
    return row, (*values, update_user)


def _iso(moment: datetime, style: int) -> str:
    """`moment` (UTC) as a loader writes it: naive, with `Z`, or with an offset."""
    if style % 3 == 0:
        return moment.isoformat()
    if style % 3 == 1:
        return moment.isoformat(timespec="milliseconds") + "Z"
    offset, text = _OFFSETS[style // 3]
    return (moment + offset).isoformat() + text


def loader_items(
    count: int, first_key: int, seed: int = 11
) -> Iterator[tuple[dict[str, Any], tuple[Any, ...]]]:
    """`loader_item` of keys `first_key, first_key + 1, ...`, always the same for a seed."""
    rng = random.Random(seed)
    for key in range(first_key, first_key + count):
        yield loader_item(key, rng)


def loader_rows(count: int, first_key: int, seed: int = 11) -> Iterator[dict[str, Any]]:
    """The rows of `loader_items`."""
    for row, _ in loader_items(count, first_key, seed):
        yield row


def table_values(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row as the table stores it, in `COLUMNS` order, read from its JSON fields (dates
    parsed and converted to naive UTC)."""
    columns = {FIELD_TO_COLUMN[name]: value for name, value in row.items()}
    for name in ("entry_date", "update_date"):
        columns[name] = naive_utc(columns[name])
    return tuple(columns[name] for name in COLUMNS)


def naive_utc(text: str) -> datetime:
    """ISO 8601 text as naive UTC (no offset means UTC), as claimpay stores it."""
    return as_naive_utc(datetime.fromisoformat(text))


_RESERVED = re.compile(r"[\\\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text_line(values: Sequence[Any]) -> str:
    """One line of PostgreSQL's COPY text format: tab-separated, `\\N` for NULL,
    backslash, tab and line breaks escaped; dates as `YYYY-MM-DD HH:MM:SS[.ffffff]`."""
    texts = [
        value.isoformat(sep=" ") if isinstance(value, datetime) else str(value) for value in values
    ]
    line = "\t".join(texts)
    if line.count("\t") == len(texts) - 1 and not _RESERVED.search(line) and None not in values:
        return line + "\n"  # most lines: nothing to escape, checked at C speed
    fields = [
        "\\N" if value is None else text.translate(_COPY_ESCAPES)
        for value, text in zip(values, texts, strict=True)
    ]
    return "\t".join(fields) + "\n"


@dataclass(frozen=True)
class PreparedBatch:
    """A batch written to disk: its request body and its COPY file."""

    rows: int
    first_key: int
    seed: int
    body_path: Path
    copy_path: Path
    body_bytes: int

    def body(self) -> bytes:
        return self.body_path.read_bytes()

    def table_rows(self) -> list[tuple[Any, ...]]:
        """The column values of every row (for the Python-driven limit)."""
        return [values for _, values in loader_items(self.rows, self.first_key, self.seed)]


def prepare_batch(
    directory: Path, name: str, count: int, first_key: int = 1, seed: int = 11
) -> PreparedBatch:
    """Write `<name>.json` (a JSON array of `count` loader rows, as `json.dumps` writes
    it) and `<name>.copy` (their table values), a piece at a time."""
    body_path, copy_path = directory / f"{name}.json", directory / f"{name}.copy"
    items = loader_items(count, first_key, seed)
    written = 0
    with body_path.open("w", encoding="utf-8") as body, copy_path.open("w") as copy:
        body.write("[")
        for offset in range(0, count, PIECE_ROWS):
            piece = [next(items) for _ in range(min(PIECE_ROWS, count - offset))]
            text = json.dumps([row for row, _ in piece])[1:-1]
            body.write(text if offset == 0 else ", " + text)
            copy.writelines(copy_text_line(values) for _, values in piece)
            written += len(piece)
        body.write("]")
    return PreparedBatch(written, first_key, seed, body_path, copy_path, body_path.stat().st_size)
