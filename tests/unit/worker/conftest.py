"""Worker fixtures: the migrated SQLite engine, typed, and SQL hooks to observe it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, Table, text

from worker.models import ENTITY_TABLES


@pytest.fixture
def engine(sqlite_engine: object) -> Engine:
    assert isinstance(sqlite_engine, Engine)
    return sqlite_engine


@pytest.fixture
def table() -> Table:
    return ENTITY_TABLES["claim_prompt_pay"]


@pytest.fixture
def reject_long_durations(engine: Engine) -> None:
    """Make the database refuse `prompt_pay_duration > 999` on insert and on update."""
    with engine.begin() as conn:
        for event in ("INSERT", "UPDATE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER reject_{event.lower()} BEFORE {event} ON claim_prompt_pay "
                "WHEN NEW.prompt_pay_duration > 999 BEGIN SELECT RAISE(ABORT, 'too long'); END"
            )


@pytest.fixture
def applied_count(engine: Engine) -> Callable[[], Counter[int]]:
    """How many committed inserts and updates each key has had since this fixture started
    (statements rolled back to a savepoint leave no trace)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE apply_log (key INTEGER NOT NULL)")
        conn.exec_driver_sql(
            "CREATE TRIGGER log_insert AFTER INSERT ON claim_prompt_pay "
            "BEGIN INSERT INTO apply_log VALUES (NEW.claim_prompt_pay_key); END"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER log_update AFTER UPDATE ON claim_prompt_pay "
            "BEGIN INSERT INTO apply_log VALUES (NEW.claim_prompt_pay_key); END"
        )

    def count() -> Counter[int]:
        with engine.connect() as conn:
            return Counter(conn.execute(text("SELECT key FROM apply_log")).scalars())

    return count
