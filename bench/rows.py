"""Benchmark rows: as a client sends them (JSON names), as a stream of JSON bytes, and as
table columns for preloading the keys that must already exist."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from tests.factories import make_row, make_rows

JSON_TO_COLUMN = {
    "claimPromptPay_Key": "claim_prompt_pay_key",
    "division_ID": "division_id",
    "group_ID": "group_id",
    "plan_ID": "plan_id",
    "prompt_Pay_Duration": "prompt_pay_duration",
    "prompt_Pay_Duration_Type": "prompt_pay_duration_type",
    "tax_ID": "tax_id",
}
COLUMNS = (
    "claim_prompt_pay_key",
    "division_id",
    "entry_date",
    "entry_user",
    "group_id",
    "plan_id",
    "prompt_pay_duration",
    "prompt_pay_duration_type",
    "tax_id",
    "update_date",
    "update_user",
)
PRELOAD_SEED = 1_000_003


def batch(count: int, first_key: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` valid rows with keys `first_key ...`, as the client sends them."""
    return make_rows(count, first_key=first_key, seed=seed)


def existing_keys(count: int, first_key: int) -> range:
    """The keys of a `count`-row batch that exist before it is applied: every other one,
    so each chunk mixes creates and updates."""
    return range(first_key, first_key + count, 2)


def table_row(row: dict[str, Any], now: datetime, user: str) -> dict[str, Any]:
    """A client row as the table's columns, with the audit columns filled."""
    columns = {JSON_TO_COLUMN[name]: value for name, value in row.items()}
    columns.update(entry_date=now, entry_user=user, update_date=now, update_user=user)
    return columns


def preload_rows(keys: Iterable[int], user: str = "preload") -> Iterator[tuple[Any, ...]]:
    """Table tuples (in `COLUMNS` order) for `keys`, with values unlike the batch's own."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(PRELOAD_SEED)
    for key in keys:
        columns = table_row(make_row(key, rng), now, user)
        yield tuple(columns[name] for name in COLUMNS)
