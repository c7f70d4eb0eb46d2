"""The upsert core on the real PostgreSQL: the reference property, constraints, lengths."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from claimpay.entities import CLAIM_PROMPT_PAY
from tests.conftest import require_service
from tests.unit.worker.reference import (
    INT32_MAX,
    KEY,
    NOW,
    SEED,
    TABLE,
    USERS,
    GeneratedRow,
    apply_raw,
    assert_apply_matches_reference,
    batches,
    read_table,
    reset,
)
from worker.engines import make_engine
from worker.errors import TransientError
from worker.migrate import upgrade
from worker.upsert import upsert_rows

pytestmark = pytest.mark.postgres

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
KEY_FIELD = CLAIM_PROMPT_PAY.key_field


@pytest.fixture(scope="module")
def pg() -> Iterator[Engine]:
    """An engine on a fresh, migrated database of its own, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"claimpay_t_{secrets.token_hex(6)}"
    admin = create_engine(f"{SERVER}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    engine: Engine | None = None
    try:
        upgrade(f"{SERVER}/{name}")
        engine = make_engine(f"{SERVER}/{name}")
        yield engine
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def seeded(pg: Engine) -> Engine:
    with pg.begin() as conn:
        reset(conn)
    return pg


def columns(key: int, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(c.name for c in TABLE.columns)
    row.update({KEY: key, **values})
    return row


def upsert(conn: Connection, rows: list[dict[str, Any]], user: str = "alice") -> list[int]:
    return [o[1] for o in upsert_rows(conn, TABLE, KEY, list(enumerate(rows)), user=user, now=NOW)]


@settings(max_examples=60, deadline=None)
@given(batch=batches(), user=st.sampled_from(USERS))
def test_apply_chunk_matches_the_row_by_row_reference(
    pg: Engine, batch: list[GeneratedRow], user: str
) -> None:
    assert_apply_matches_reference(pg, batch, user, job_id=uuid.uuid4().hex)


@pytest.fixture
def duration_check(seeded: Engine) -> Iterator[Callable[[], Counter[int]]]:
    """A CHECK constraint `prompt_pay_duration <= 999`, and a count of committed writes."""
    with seeded.begin() as conn:
        conn.execute(text(
            "ALTER TABLE claim_prompt_pay ADD CONSTRAINT ck_duration "
            "CHECK (prompt_pay_duration <= 999);"
            "CREATE TABLE apply_log (key integer NOT NULL);"
            "CREATE FUNCTION log_apply() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO apply_log VALUES (NEW.claim_prompt_pay_key); RETURN NEW; END $$;"
            "CREATE TRIGGER log_apply AFTER INSERT OR UPDATE ON claim_prompt_pay "
            "FOR EACH ROW EXECUTE FUNCTION log_apply();"
        ))  # fmt: skip

    def count() -> Counter[int]:
        with seeded.connect() as conn:
            return Counter(conn.execute(text("SELECT key FROM apply_log")).scalars())

    yield count
    with seeded.begin() as conn:
        conn.execute(text(
            "DROP TRIGGER log_apply ON claim_prompt_pay; DROP FUNCTION log_apply();"
            "DROP TABLE apply_log; ALTER TABLE claim_prompt_pay DROP CONSTRAINT ck_duration;"
        ))  # fmt: skip


def test_check_constraint_rejects_one_row_with_422_while_the_rest_apply_once(
    seeded: Engine, duration_check: Callable[[], Counter[int]]
) -> None:
    raw = [{"claimPromptPay_Key": key, "prompt_Pay_Duration": 30} for key in range(1, 13)]
    raw[5]["prompt_Pay_Duration"] = 1000  # key 6, an insert
    raw[1]["prompt_Pay_Duration"] = 5000  # key 2, an update of a seed row
    raw.append({"claimPromptPay_Key": 3, "prompt_Pay_Duration": 45})
    outcomes = apply_raw(seeded, TABLE, uuid.uuid4().hex, 0, list(enumerate(raw)), "alice")
    assert [o[1] for o in outcomes] == [200, 422, 201, 201, 201, 422] + [201] * 6 + [200]
    assert "ck_duration" in str(outcomes[5][2])
    assert duration_check() == Counter([1, 3, 4, 5, 7, 8, 9, 10, 11, 12, 3])
    with seeded.connect() as conn:
        stored = read_table(conn)
    assert 6 not in stored
    assert stored[2] == SEED[2]
    assert stored[3]["prompt_pay_duration"] == 45


def test_overlong_strings_are_rejected_not_truncated(seeded: Engine) -> None:
    rows = [
        columns(10, group_id="G" * 21),
        columns(1, tax_id="9" * 33),
        columns(11, update_user="u" * 21),
        columns(12, entry_user="e" * 201),
        columns(13, division_id="D" * 20),
    ]
    with seeded.begin() as conn:
        statuses = upsert(conn, rows)
    assert statuses == [422, 422, 422, 422, 201]
    with seeded.connect() as conn:
        stored = read_table(conn)
    assert set(stored) == {*SEED, 13}
    assert stored[1] == SEED[1]
    assert stored[13]["division_id"] == "D" * 20


def test_text_with_a_nul_character_is_rejected_as_the_rows_fault(seeded: Engine) -> None:
    with seeded.begin() as conn:
        assert upsert(conn, [columns(20, tax_id="12\x0034"), columns(21)]) == [422, 201]


def test_lock_timeout_raises_transient_error(seeded: Engine) -> None:
    url = seeded.url.render_as_string(hide_password=False)
    impatient = create_engine(url, connect_args={"options": "-c lock_timeout=100"})
    try:
        with seeded.begin() as holder:
            holder.execute(
                text("UPDATE claim_prompt_pay SET plan_id = 'HELD' WHERE claim_prompt_pay_key = 1")
            )
            with pytest.raises(TransientError, match="LockNotAvailable"):
                apply_raw(impatient, TABLE, "j", 0, [(0, {KEY_FIELD: 1})], "a")
    finally:
        impatient.dispose()


def test_unreachable_database_raises_transient_error() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    missing = make_engine(f"{SERVER}/claimpay_no_such_db_{secrets.token_hex(4)}")
    try:
        with pytest.raises(TransientError):
            apply_raw(missing, TABLE, "j", 0, [(0, {"claimPromptPay_Key": 1})], "a")
    finally:
        missing.dispose()


def test_update_after_a_concurrent_insert_keeps_the_stored_entry_fields(seeded: Engine) -> None:
    first = seeded.connect()
    holding = first.begin()
    upsert(first, [columns(30)], user="first")  # not committed yet: holds the key's lock
    done: dict[str, Any] = {}

    def second_writer() -> None:
        try:
            with seeded.begin() as conn:
                done["statuses"] = upsert(conn, [columns(30, group_id="G")], user="second")
        except Exception as exc:  # reported below, on the test's thread
            done["error"] = exc

    writer = threading.Thread(target=second_writer)
    writer.start()
    try:
        wait_for_a_lock_wait(seeded)
    finally:
        holding.commit()
        first.close()
        writer.join()
    if "error" in done:
        raise RuntimeError("the second writer failed") from done["error"]
    assert done["statuses"] == [200]
    with seeded.connect() as conn:
        row = conn.execute(select(TABLE).where(TABLE.c[KEY] == 30)).mappings().one()
    assert (row["group_id"], row["update_user"]) == ("G", "second")
    assert row["entry_user"] == "first"


def wait_for_a_lock_wait(engine: Engine, limit_s: float = 30.0) -> None:
    """Return once a session of this database waits on a lock (the second writer)."""
    deadline = time.monotonic() + limit_s
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        while not conn.execute(query).scalar():
            if time.monotonic() > deadline:
                raise RuntimeError("the second writer never waited on the first one's lock")
            time.sleep(0.02)
            conn.rollback()


def test_one_wave_keeps_or_replaces_entry_fields_row_by_row(seeded: Engine) -> None:
    sent_date = SEED[1]["entry_date"].replace(year=2020)
    rows = [
        columns(1, entry_user="sent-user"),  # update: sends entry_user only
        columns(2),  # update: sends neither, keeps both
        columns(INT32_MAX, entry_date=sent_date, entry_user="both"),  # update: sends both
        columns(50),  # create: defaults
        columns(51, entry_date=sent_date),  # create: the date sent, the user defaulted
    ]
    with seeded.begin() as conn:
        assert upsert(conn, rows, user="carol") == [200, 200, 200, 201, 201]
    with seeded.connect() as conn:
        stored = read_table(conn)
    entry = {key: (stored[key]["entry_date"], stored[key]["entry_user"]) for key in stored}
    assert entry[1] == (SEED[1]["entry_date"], "sent-user")
    assert entry[2] == (SEED[2]["entry_date"], SEED[2]["entry_user"])
    assert entry[INT32_MAX] == (sent_date, "both")
    assert entry[50] == (NOW, "carol")
    assert entry[51] == (sent_date, "carol")


def test_dates_are_stored_as_naive_utc_whatever_the_session_time_zone(seeded: Engine) -> None:
    raw = [
        {"claimPromptPay_Key": 10, "entry_Date": "2024-03-01T10:00:00"},
        {"claimPromptPay_Key": 11, "entry_Date": "2024-03-01T10:00:00.250+02:00"},
        {"claimPromptPay_Key": 12, "entry_Date": "2024-03-01T23:30:00-05:00"},
        {"claimPromptPay_Key": 1, "update_Date": "0001-01-01T00:00:00Z"},
    ]
    elsewhere = create_engine(
        seeded.url, connect_args={"options": "-c timezone=Asia/Kolkata"}, poolclass=NullPool
    )
    try:
        with elsewhere.connect() as conn:
            assert conn.execute(text("SHOW timezone")).scalar_one() == "Asia/Kolkata"
        outcomes = apply_raw(elsewhere, TABLE, uuid.uuid4().hex, 0, list(enumerate(raw)), "a")
    finally:
        elsewhere.dispose()
    assert [o[1] for o in outcomes] == [201, 201, 201, 200]
    with seeded.connect() as conn:
        stored = read_table(conn)
    assert stored[10]["entry_date"] == datetime(2024, 3, 1, 10, 0)
    assert stored[11]["entry_date"] == datetime(2024, 3, 1, 8, 0, 0, 250_000)
    assert stored[12]["entry_date"] == datetime(2024, 3, 2, 4, 30)
    assert stored[1]["update_date"] == datetime(1, 1, 1, 0, 0)
