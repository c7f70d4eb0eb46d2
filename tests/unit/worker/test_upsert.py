"""The upsert core on SQLite: created vs updated, audit fields, duplicates, rejected rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select

from claimpay.entities import CLAIM_PROMPT_PAY
from claimpay.envelope import Outcome
from claimpay.rows import ValidRow, validate_row
from tests.factories import make_row
from worker.upsert import upsert_rows
from worker.upsert.core import waves

KEY = "claim_prompt_pay_key"
NOW = datetime(2030, 1, 2, 3, 4, 5)
LATER = datetime(2031, 6, 7, 8, 9, 10)


def columns(key: int, **fields: Any) -> dict[str, Any]:
    checked = validate_row(CLAIM_PROMPT_PAY, make_row(key, **fields))
    assert isinstance(checked, ValidRow), checked
    return checked.values


def upsert(
    engine: Engine,
    table: Table,
    rows: list[dict[str, Any]],
    user: str = "alice",
    now: datetime = NOW,
) -> list[Outcome]:
    with engine.begin() as conn:
        return upsert_rows(conn, table, KEY, list(enumerate(rows)), user=user, now=now)


def content(engine: Engine, table: Table) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {row[KEY]: dict(row) for row in conn.execute(select(table)).mappings()}


def stored(engine: Engine, table: Table, key: int) -> dict[str, Any]:
    return content(engine, table)[key]


def test_new_key_is_created_with_201_and_its_values_stored(engine: Engine, table: Table) -> None:
    assert upsert(engine, table, [columns(10, group_ID="G1", tax_ID="987654321")]) == [
        (0, 201, None, 10)
    ]
    row = stored(engine, table, 10)
    assert (row["group_id"], row["tax_id"]) == ("G1", "987654321")
    assert (row["entry_date"], row["entry_user"]) == (NOW, "alice")
    assert (row["update_date"], row["update_user"]) == (NOW, "alice")


def test_existing_key_is_updated_with_200_and_new_values_stored(
    engine: Engine, table: Table
) -> None:
    upsert(engine, table, [columns(10, group_ID="OLD", prompt_Pay_Duration=30)])
    new = columns(10, group_ID="NEW", prompt_Pay_Duration=45, plan_ID=None)
    assert upsert(engine, table, [new], user="bob", now=LATER) == [(0, 200, None, 10)]
    row = stored(engine, table, 10)
    assert (row["group_id"], row["prompt_pay_duration"], row["plan_id"]) == ("NEW", 45, None)
    assert (row["update_date"], row["update_user"]) == (LATER, "bob")


def test_update_keeps_stored_entry_date_and_entry_user_unless_sent(
    engine: Engine, table: Table
) -> None:
    upsert(engine, table, [columns(1), columns(2)])
    upsert(engine, table, [columns(1), columns(2, entry_User=None)], user="bob", now=LATER)
    for key in (1, 2):
        row = stored(engine, table, key)
        assert (row["entry_date"], row["entry_user"]) == (NOW, "alice")


def test_update_stores_entry_date_and_entry_user_when_sent(engine: Engine, table: Table) -> None:
    upsert(engine, table, [columns(1)])
    upsert(
        engine, table, [columns(1, entry_Date="2020-05-05T05:05:05Z", entry_User="migrator")],
        now=LATER,
    )  # fmt: skip
    row = stored(engine, table, 1)
    assert (row["entry_date"], row["entry_user"]) == (datetime(2020, 5, 5, 5, 5, 5), "migrator")


def test_sent_update_date_and_update_user_are_stored_as_sent(engine: Engine, table: Table) -> None:
    upsert(engine, table, [columns(1, update_Date="2021-01-01T00:00:00+01:00", update_User="ops")])
    row = stored(engine, table, 1)
    assert (row["update_date"], row["update_user"]) == (datetime(2020, 12, 31, 23, 0), "ops")


def test_absent_or_null_update_fields_are_filled_with_now_and_the_user(
    engine: Engine, table: Table
) -> None:
    upsert(engine, table, [columns(1, update_Date="2021-01-01T00:00:00", update_User="ops")])
    upsert(engine, table, [columns(1, update_User=None)], user="carol", now=LATER)
    row = stored(engine, table, 1)
    assert (row["update_date"], row["update_user"]) == (LATER, "carol")


def test_long_user_is_cut_to_the_user_columns(engine: Engine, table: Table) -> None:
    user = "u" * 250
    upsert(engine, table, [columns(1)], user=user)
    row = stored(engine, table, 1)
    assert (row["entry_user"], row["update_user"]) == ("u" * 200, "u" * 20)


def test_duplicate_key_in_one_batch_keeps_last_write(engine: Engine, table: Table) -> None:
    rows = [columns(5, group_ID=f"V{n}") for n in range(4)]
    assert [o[1] for o in upsert(engine, table, rows)] == [201, 200, 200, 200]
    row = stored(engine, table, 5)
    assert row["group_id"] == "V3"


def test_duplicates_of_an_existing_key_are_each_updated(engine: Engine, table: Table) -> None:
    upsert(engine, table, [columns(5)])
    rows = [columns(6), columns(5, tax_ID="A"), columns(6, tax_ID="B"), columns(5, tax_ID="C")]
    assert [o[1] for o in upsert(engine, table, rows)] == [201, 200, 200, 200]
    assert [stored(engine, table, k)["tax_id"] for k in (5, 6)] == ["C", "B"]


def test_outcomes_follow_input_indexes(engine: Engine, table: Table) -> None:
    rows = [(7, columns(3)), (9, columns(1)), (12, columns(3)), (20, columns(2))]
    with engine.begin() as conn:
        outcomes = upsert_rows(conn, table, KEY, rows, user="a", now=NOW)
    assert outcomes == [
        (7, 201, None, 3),
        (9, 201, None, 1),
        (12, 200, None, 3),
        (20, 201, None, 2),
    ]


def test_no_rows_give_no_outcomes(engine: Engine, table: Table) -> None:
    assert upsert(engine, table, []) == []


def test_waves_hold_each_keys_kth_occurrence_in_input_order() -> None:
    rows = [(i, {KEY: key}) for i, key in enumerate([1, 2, 1, 3, 1, 2])]
    assert [[i for i, _ in wave] for wave in waves(rows, KEY)] == [[0, 1, 3], [2, 5], [4]]


@pytest.mark.usefixtures("reject_long_durations")
def test_database_rejected_rows_get_422_and_every_other_row_applies_once(
    engine: Engine, table: Table, applied_count: Callable[[], Counter[int]]
) -> None:
    upsert(engine, table, [columns(1, prompt_Pay_Duration=30), columns(2, prompt_Pay_Duration=14)])
    before = applied_count()
    rows = [columns(k, prompt_Pay_Duration=15) for k in range(1, 9)]
    rows[1] = columns(2, prompt_Pay_Duration=5000)  # an update the database refuses
    rows[4] = columns(5, prompt_Pay_Duration=1000)  # an insert the database refuses
    outcomes = upsert(engine, table, rows, now=LATER)
    assert [o[1] for o in outcomes] == [200, 422, 201, 201, 422, 201, 201, 201]
    assert outcomes[1][2] == "Rejected by the database: too long"
    assert applied_count() - before == Counter([1, 3, 4, 6, 7, 8])
    assert 5 not in content(engine, table)
    kept = stored(engine, table, 2)
    assert (kept["prompt_pay_duration"], kept["update_date"]) == (14, NOW)


@pytest.mark.usefixtures("reject_long_durations")
def test_rejected_first_occurrence_leaves_the_next_one_to_create(
    engine: Engine, table: Table
) -> None:
    rows = [columns(4, prompt_Pay_Duration=1000), columns(4, prompt_Pay_Duration=45)]
    assert [o[1] for o in upsert(engine, table, rows)] == [422, 201]
    assert stored(engine, table, 4)["prompt_pay_duration"] == 45


def test_dates_are_stored_in_sqlalchemy_s_text_form_whole_seconds_included(
    engine: Engine, table: Table
) -> None:
    """SQLite keeps dates as text: the form SQLAlchemy writes (and reads back), always
    with microseconds; a plain `sqlite3` binding would drop them from a whole second."""
    upsert(engine, table, [columns(20, update_Date="2030-05-06T07:08:09Z")])  # entry: NOW
    upsert(engine, table, [columns(20, update_Date="2031-05-06T07:08:09+02:00")])
    with engine.connect() as conn:
        raw = conn.exec_driver_sql(
            f"SELECT entry_date, update_date FROM {table.name} WHERE {KEY} = 20"  # noqa: S608
        ).one()
    assert tuple(raw) == ("2030-01-02 03:04:05.000000", "2031-05-06 05:08:09.000000")
