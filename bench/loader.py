"""The bodies users send: every field a loading tool sends, serialized with ordinary
`json.dumps` spacing; and the same rows as a COPY file for the limit.

A batch is written once, before anything is timed, to two files side by side: the request
body and the table's column values in PostgreSQL's COPY text format. Both come from one
pass over the rows, so the limit loads exactly what claimpay is sent.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.rows import COLUMNS, JSON_TO_COLUMN
from tests.factories import make_row

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


def loader_row(key: int, rng: random.Random) -> dict[str, Any]:
    """One row with every field of the seed, in the seed's order, as a loading tool sends
    it: audit dates as ISO 8601 text, some naive (taken as UTC), some with an offset."""
    rule = make_row(key, rng)
    entered = EPOCH - timedelta(days=rng.randrange(3650), seconds=rng.randrange(86_400))
    updated = entered + timedelta(seconds=rng.randrange(10**8), microseconds=rng.randrange(10**6))
    return {
        "claimPromptPay_Key": key,
        "division_ID": rule["division_ID"],
        "entry_Date": _iso(entered, rng),
        "entry_User": rng.choice(LOADER_USERS),
        "group_ID": rule["group_ID"],
        "plan_ID": rule["plan_ID"],
        "prompt_Pay_Duration": rule["prompt_Pay_Duration"],
        "prompt_Pay_Duration_Type": rule["prompt_Pay_Duration_Type"],
        "tax_ID": rule["tax_ID"],
        "update_Date": _iso(updated, rng),
        "update_User": rng.choice(LOADER_USERS),
    }


def _iso(moment: datetime, rng: random.Random) -> str:
    """`moment` (UTC) as a loader writes it: naive, with `Z`, or with an offset."""
    style = rng.randrange(3)
    if style == 0:
        return moment.isoformat()
    if style == 1:
        return moment.isoformat(timespec="milliseconds") + "Z"
    offset = timedelta(hours=rng.choice((-5, -4, 1, 2)))
    return (moment + offset).isoformat() + _offset_text(offset)


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def loader_rows(count: int, first_key: int, seed: int = 11) -> Iterator[dict[str, Any]]:
    """`count` rows with keys `first_key, first_key + 1, ...`, always the same for a seed."""
    rng = random.Random(seed)
    for key in range(first_key, first_key + count):
        yield loader_row(key, rng)


def table_values(row: dict[str, Any]) -> tuple[Any, ...]:
    """A loader row as the table stores it, in `COLUMNS` order: dates as naive UTC."""
    columns = {FIELD_TO_COLUMN[name]: value for name, value in row.items()}
    for name in ("entry_date", "update_date"):
        columns[name] = naive_utc(columns[name])
    return tuple(columns[name] for name in COLUMNS)


def naive_utc(text: str) -> datetime:
    """ISO 8601 text as naive UTC (no offset means UTC), as claimpay stores it."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text_line(values: Sequence[Any]) -> str:
    """One line of PostgreSQL's COPY text format: tab-separated, `\\N` for NULL,
    backslash, tab and line breaks escaped; dates as `YYYY-MM-DD HH:MM:SS[.ffffff]`."""
    fields = []
    for value in values:
        if value is None:
            fields.append("\\N")
        elif isinstance(value, datetime):
            fields.append(value.isoformat(sep=" "))
        else:
            fields.append(str(value).translate(_COPY_ESCAPES))
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
        return [table_values(row) for row in loader_rows(self.rows, self.first_key, self.seed)]


def prepare_batch(
    directory: Path, name: str, count: int, first_key: int = 1, seed: int = 11
) -> PreparedBatch:
    """Write `<name>.json` (a JSON array of `count` loader rows, as `json.dumps` writes
    it) and `<name>.copy` (their table values), a piece at a time."""
    body_path, copy_path = directory / f"{name}.json", directory / f"{name}.copy"
    rows = loader_rows(count, first_key, seed)
    written = 0
    with body_path.open("w", encoding="utf-8") as body, copy_path.open("w") as copy:
        body.write("[")
        for offset in range(0, count, PIECE_ROWS):
            piece = [next(rows) for _ in range(min(PIECE_ROWS, count - offset))]
            text = json.dumps(piece)[1:-1]
            body.write(text if offset == 0 else ", " + text)
            copy.writelines(copy_text_line(table_values(row)) for row in piece)
            written += len(piece)
        body.write("]")
    return PreparedBatch(written, first_key, seed, body_path, copy_path, body_path.stat().st_size)
