"""A row-by-row reference of the upsert semantics, and hypothesis strategies for batches.

The reference applies rows one at a time, in input order, with the documented rules:
create -> 201 with absent entry_* filled with now/user; update -> 200 keeping the stored
entry_* unless sent; absent update_* filled with now/user; invalid rows -> 400, no effect.
Generated rows carry the column values they must produce, so the reference never calls the
code under test to know what a row means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, Table, delete, select

from claimpay.entities import CLAIM_PROMPT_PAY
from claimpay.envelope import Outcome
from worker import apply
from worker.models import ENTITY_TABLES, ChunkLedger

TABLE = ENTITY_TABLES["claim_prompt_pay"]
LEDGER = cast(Table, ChunkLedger.__table__)
KEY = "claim_prompt_pay_key"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
NOW = datetime(2030, 6, 1, 12, 0, 0, 123000)
USERS = ("alice", "a-token-subject-longer-than-twenty")
STRINGS = {  # JSON name -> (column, max length)
    "division_ID": ("division_id", 20),
    "entry_User": ("entry_user", 200),
    "group_ID": ("group_id", 20),
    "plan_ID": ("plan_id", 20),
    "tax_ID": ("tax_id", 32),
    "update_User": ("update_user", 20),
}
COLUMNS = [column.name for column in TABLE.columns]
OFFSETS_MIN = {"": 0, "Z": 0, "+02:00": 120, "-05:30": -330, "+14:00": 840}


def seed_row(key: int, n: int) -> dict[str, Any]:
    return {
        KEY: key,
        "division_id": f"DIV{n}",
        "entry_date": datetime(2001, 1, n, 8, 30),
        "entry_user": f"seeder{n}",
        "group_id": f"GRP{n}",
        "plan_id": "PPO",
        "prompt_pay_duration": 30,
        "prompt_pay_duration_type": "D",
        "tax_id": "123456789",
        "update_date": datetime(2002, 2, n, 9, 45),
        "update_user": f"updater{n}",
    }


SEED = {key: seed_row(key, n) for n, key in enumerate((1, 2, INT32_MAX), start=1)}
KEYS = st.sampled_from([1, 2, INT32_MAX, 3, 4, 0, INT32_MIN])


@dataclass(frozen=True)
class GeneratedRow:
    """What the client sends, and what it must do: its columns when valid, else None."""

    raw: Any
    columns: dict[str, Any] | None
    key: int | None


class ReferenceTable:
    """The table as a dict `key -> columns`, changed one row at a time."""

    def __init__(self, rows: dict[int, dict[str, Any]]) -> None:
        self.rows = {key: dict(values) for key, values in rows.items()}

    def apply(self, batch: Sequence[GeneratedRow], user: str, now: datetime) -> list[int]:
        """The status of each row, in input order."""
        return [self._apply_one(row, user, now) for row in batch]

    def _apply_one(self, row: GeneratedRow, user: str, now: datetime) -> int:
        if row.columns is None:
            return 400
        new = dict(row.columns)
        if new["update_date"] is None:
            new["update_date"] = now
        if new["update_user"] is None:
            new["update_user"] = user[:20]
        old = self.rows.get(new[KEY])
        for column, default in (("entry_date", now), ("entry_user", user)):
            if new[column] is None:
                new[column] = default if old is None else old[column]
        self.rows[new[KEY]] = new
        return 201 if old is None else 200


def reset(conn: Connection) -> None:
    """Empty the ledger and the table, then store the seed rows."""
    conn.execute(delete(LEDGER))
    conn.execute(delete(TABLE))
    conn.execute(TABLE.insert(), list(SEED.values()))


def read_table(conn: Connection) -> dict[int, dict[str, Any]]:
    return {row[KEY]: dict(row) for row in conn.execute(select(TABLE)).mappings()}


# -- strategies -------------------------------------------------------------------------

ABSENT = object()
TEXT = st.characters(codec="utf-8", exclude_characters="\x00")


def _texts(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(TEXT, max_size=min(limit, 8)),
        st.text(TEXT, min_size=limit, max_size=limit),
        st.just("M" * limit),
    )


@st.composite
def _timestamp(draw: st.DrawFn) -> tuple[str, datetime]:
    local = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)))
    suffix = draw(st.sampled_from(sorted(OFFSETS_MIN)))
    return local.isoformat() + suffix, local - timedelta(minutes=OFFSETS_MIN[suffix])


def _pairs(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    """(JSON value, column value) where both are the same."""
    return values.map(lambda value: (value, value))


FIELDS: dict[str, tuple[str, st.SearchStrategy[tuple[Any, Any]], bool]] = {
    # JSON name -> (column, (json, column) pairs, may it be null)
    **{name: (column, _pairs(_texts(limit)), True) for name, (column, limit) in STRINGS.items()},
    "prompt_Pay_Duration": ("prompt_pay_duration", _pairs(st.integers(0, INT32_MAX)), True),
    "prompt_Pay_Duration_Type": ("prompt_pay_duration_type", _pairs(st.sampled_from("DMY")), True),
    "entry_Date": ("entry_date", _timestamp(), False),
    "update_Date": ("update_date", _timestamp(), False),
}


@st.composite
def valid_rows(draw: st.DrawFn) -> GeneratedRow:
    key = draw(KEYS)
    raw: dict[str, Any] = {"claimPromptPay_Key": key}
    columns: dict[str, Any] = dict.fromkeys(COLUMNS)
    columns[KEY] = key
    for name, (column, pairs, nullable) in FIELDS.items():
        choices = [st.just(ABSENT), pairs] + ([st.just((None, None))] if nullable else [])
        choice = draw(st.one_of(*choices))
        if choice is not ABSENT:
            raw[name], columns[column] = choice
    return GeneratedRow(raw, columns, key)


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda raw: {**raw, name: value}


_BAD_KEY: list[Callable[[dict[str, Any]], Any]] = [
    _set("claimPromptPay_Key", "7"),
    _set("claimPromptPay_Key", 7.0),
    _set("claimPromptPay_Key", True),
    _set("claimPromptPay_Key", None),
    _set("claimPromptPay_Key", INT32_MAX + 1),
    lambda raw: {name: value for name, value in raw.items() if name != "claimPromptPay_Key"},
    lambda raw: [raw],
    lambda raw: "row",
]
_BAD_FIELD: list[Callable[[dict[str, Any]], Any]] = [
    *(_set(name, "x" * (limit + 1)) for name, (_, limit) in STRINGS.items()),
    _set("group_ID", 5),
    _set("prompt_Pay_Duration", "30"),
    _set("prompt_Pay_Duration", -1),
    _set("prompt_Pay_Duration_Type", "W"),
    _set("entry_Date", None),
    _set("update_Date", "not a date"),
    _set("claimPromptPay_key", 1),
]


@st.composite
def invalid_rows(draw: st.DrawFn) -> GeneratedRow:
    base = draw(valid_rows())
    if draw(st.booleans()):
        return GeneratedRow(draw(st.sampled_from(_BAD_KEY))(base.raw), None, None)
    return GeneratedRow(draw(st.sampled_from(_BAD_FIELD))(base.raw), None, base.key)


def batches(max_size: int = 25) -> st.SearchStrategy[list[GeneratedRow]]:
    return st.lists(st.one_of(valid_rows(), valid_rows(), invalid_rows()), max_size=max_size)


# -- the property -----------------------------------------------------------------------


def stored_element(batch: Sequence[GeneratedRow]) -> bytes:
    """The batch as the producer stores a chunk: one JSON array of `[index, row]` items."""
    return orjson.dumps([[index, row.raw] for index, row in enumerate(batch)])


def apply_raw(
    engine: Engine,
    table: Table,
    job_id: str,
    chunk_no: int,
    raw_rows: Sequence[tuple[int, Any]],
    user: str,
    *,
    dry_run: bool = False,
) -> list[Outcome]:
    """`(index, raw row)` pairs validated (`split_valid`) and applied (`apply_valid`)."""
    valid, invalid = apply.split_valid(CLAIM_PROMPT_PAY, raw_rows)
    return apply.apply_valid(
        engine, CLAIM_PROMPT_PAY, table, job_id, chunk_no, valid, invalid, user, dry_run=dry_run
    )


def assert_apply_matches_reference(
    engine: Engine, batch: list[GeneratedRow], user: str, job_id: str
) -> None:
    """Run `batch` as one chunk through `apply_valid`, twice, against the reference: the
    same statuses and keys per row, the same table, and a second run that changes nothing."""
    with engine.begin() as conn:
        reset(conn)
    reference = ReferenceTable(SEED)
    expected = reference.apply(batch, user, NOW)
    raw_rows = [(index, orjson.loads(orjson.dumps(row.raw))) for index, row in enumerate(batch)]
    runs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(apply, "utc_now", lambda: NOW)
        # As a worker runs it: the chunk as stored, validated in one call per element.
        valid, invalid = apply.split_valid_stored(CLAIM_PROMPT_PAY, [stored_element(batch)])
        runs.append(
            apply.apply_valid(engine, CLAIM_PROMPT_PAY, TABLE, job_id, 0, valid, invalid, user)
        )
        with engine.connect() as conn:
            assert read_table(conn) == reference.rows
        runs.append(apply_raw(engine, TABLE, job_id, 0, raw_rows, user))
        with engine.connect() as conn:
            assert read_table(conn) == reference.rows
    first = runs[0]
    assert [o[0] for o in first] == list(range(len(batch)))
    assert [o[1] for o in first] == expected
    assert [o[3] for o in first] == [row.key for row in batch]
    assert all((o[2] is None) == (o[1] in (200, 201)) for o in first)
    assert [list(o) for o in runs[1]] == [list(o) for o in first]
