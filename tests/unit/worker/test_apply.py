"""Applying a chunk on SQLite: validation first, one transaction, the ledger, fault types."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, event, select

from claimpay.entities import CLAIM_PROMPT_PAY
from claimpay.envelope import Outcome, RowStatus
from tests.factories import make_row
from tests.unit.worker.reference import apply_raw
from worker import apply, ledger
from worker.apply import failed_valid, split_valid
from worker.engines import make_engine
from worker.errors import TransientError
from worker.migrate import upgrade

NOW = datetime(2030, 1, 2, 3, 4, 5)
JOB = "job-a"


@pytest.fixture(autouse=True)
def _frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apply, "utc_now", lambda: NOW)


def run(engine: Engine, table: Table, rows: list[Any], chunk_no: int = 0) -> list[Outcome]:
    indexed = list(enumerate(rows, start=chunk_no * 100))
    return apply_raw(engine, table, JOB, chunk_no, indexed, "alice")


def content(engine: Engine, table: Table) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(table)).mappings()
        return {row["claim_prompt_pay_key"]: dict(row) for row in rows}


def test_chunk_gives_every_row_its_outcome_in_input_order(engine: Engine, table: Table) -> None:
    run(engine, table, [make_row(2)], chunk_no=9)
    rows = [make_row(1), {"claimPromptPay_Key": "x"}, make_row(2), make_row(1), [3]]
    outcomes = run(engine, table, rows)
    assert [(o[0], o[1], o[3]) for o in outcomes] == [
        (0, 201, 1), (1, 400, None), (2, 200, 2), (3, 200, 1), (4, 400, None)
    ]  # fmt: skip
    assert outcomes[1][2] == "claimPromptPay_Key: Input should be a valid integer"
    assert outcomes[4][2] == "row must be a JSON object, not an array"
    assert set(content(engine, table)) == {1, 2}


def test_invalid_rows_get_400_and_never_reach_sql(engine: Engine, table: Table) -> None:
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        sent.append(f"{statement} {params}")

    rows = [make_row(1), make_row(4242, tax_ID="T" * 33), make_row(4343, prompt_Pay_Duration="9")]
    outcomes = run(engine, table, rows)
    assert [o[1] for o in outcomes] == [201, 400, 400]
    assert [o[3] for o in outcomes] == [1, 4242, 4343]
    assert sent
    assert not [text for text in sent if "4242" in text or "4343" in text]
    assert set(content(engine, table)) == {1}


@pytest.mark.usefixtures("reject_long_durations")
def test_database_rejected_row_gets_422_while_the_rest_of_the_chunk_applies_once(
    engine: Engine, table: Table, applied_count: Callable[[], Counter[int]]
) -> None:
    rows = [make_row(k, prompt_Pay_Duration=30) for k in range(1, 11)]
    rows[6] = make_row(7, prompt_Pay_Duration=1000)
    rows.append(make_row(3, prompt_Pay_Duration=45))
    outcomes = run(engine, table, rows)
    assert [o[1] for o in outcomes] == [201] * 6 + [422] + [201] * 3 + [200]
    assert outcomes[6][2] == "Rejected by the database: too long"
    expected = Counter(k for k in range(1, 11) if k != 7) + Counter([3])
    assert applied_count() == expected
    stored = content(engine, table)
    assert 7 not in stored
    assert stored[3]["prompt_pay_duration"] == 45


def test_rerun_of_a_chunk_returns_the_stored_outcomes_and_applies_nothing(
    engine: Engine, table: Table, applied_count: Callable[[], Counter[int]]
) -> None:
    rows = [make_row(1), make_row(2), make_row(1, group_ID="LAST"), {"bad": 1}]
    first = run(engine, table, rows)
    before = content(engine, table), applied_count()
    second = run(engine, table, [make_row(1, group_ID="CHANGED"), make_row(99)])
    assert [list(o) for o in second] == [list(o) for o in first]
    assert (content(engine, table), applied_count()) == before
    assert content(engine, table)[1]["group_id"] == "LAST"


def test_rerun_returns_outcomes_equal_to_the_first_run(engine: Engine, table: Table) -> None:
    first = run(engine, table, [make_row(1)])
    assert run(engine, table, [make_row(1)]) == first


def test_chunk_of_only_invalid_rows_is_recorded_in_the_ledger(engine: Engine, table: Table) -> None:
    outcomes = run(engine, table, [{"claimPromptPay_Key": 1, "x": 2}, "row"])
    assert [o[1] for o in outcomes] == [400, 400]
    with engine.connect() as conn:
        assert ledger.lookup(conn, JOB, 0) == outcomes
    assert content(engine, table) == {}


def test_same_chunk_number_of_another_job_is_applied(engine: Engine, table: Table) -> None:
    run(engine, table, [make_row(1)])
    other = apply_raw(engine, table, "job-b", 0, [(0, make_row(1))], "bob")
    assert [o[1] for o in other] == [200]


def test_run_that_loses_to_a_committed_run_returns_that_runs_outcomes(
    engine: Engine, table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = run(engine, table, [make_row(1, group_ID="WINNER")])
    real_lookup = ledger.lookup
    calls: list[int] = []

    def stale_lookup(conn: Any, job_id: str, chunk_no: int) -> list[Any] | None:
        calls.append(chunk_no)  # the first look happens before the winner's commit
        return None if len(calls) == 1 else real_lookup(conn, job_id, chunk_no)

    monkeypatch.setattr(ledger, "lookup", stale_lookup)
    loser = run(engine, table, [make_row(1, group_ID="LOSER"), make_row(2)])
    assert [list(o) for o in loser] == [list(o) for o in winner]
    assert len(calls) == 2
    assert content(engine, table)[1]["group_id"] == "WINNER"
    assert 2 not in content(engine, table)


def test_locked_database_raises_transient_error(sqlite_url: str, table: Table) -> None:
    holder = make_engine(sqlite_url)
    impatient = make_engine(sqlite_url, statement_timeout_s=0)
    try:
        # holder's BEGIN IMMEDIATE takes the write lock; impatient does not wait for it
        with holder.begin(), pytest.raises(TransientError, match="OperationalError"):
            run(impatient, table, [make_row(1)])
    finally:
        impatient.dispose()
        holder.dispose()


def test_unopenable_database_raises_transient_error(tmp_path: Path, table: Table) -> None:
    path = tmp_path / "a-directory.db"
    path.mkdir()
    broken = make_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(TransientError):
            run(broken, table, [make_row(1)])
    finally:
        broken.dispose()


def test_a_failed_chunk_gives_valid_rows_the_status_and_keeps_the_400s() -> None:
    rows = [(5, make_row(1)), (6, {"claimPromptPay_Key": 2, "plan_ID": 3}), (7, make_row(3))]
    valid, invalid = split_valid(CLAIM_PROMPT_PAY, rows)
    outcomes = failed_valid(
        CLAIM_PROMPT_PAY, valid, invalid, RowStatus.UNAVAILABLE, "Database unavailable"
    )
    assert outcomes == [
        (5, 503, "Database unavailable", 1),
        (6, 400, "plan_ID: Input should be a valid string", 2),
        (7, 503, "Database unavailable", 3),
    ]


def test_row_with_an_unrepresentable_date_gets_400_and_the_chunk_applies(
    engine: Engine, table: Table
) -> None:
    rows = [make_row(1), make_row(2, entry_Date="0001-01-01T00:00:00+01:00")]
    assert [o[1] for o in run(engine, table, rows)] == [201, 400]


@pytest.fixture
def ledger_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_ledger_prune_forgets_only_entries_older_than_the_horizon(ledger_engine: Engine) -> None:
    with ledger_engine.begin() as conn:
        ledger.record(conn, "old", 0, [Outcome(0, 201, None, 1)], NOW - timedelta(days=8))
        ledger.record(conn, "new", 0, [Outcome(0, 201, None, 1)], NOW - timedelta(days=6))
        horizon = ledger.prune_horizon(NOW, 7 * 24 * 3600)
        assert horizon == NOW - timedelta(days=7)
        assert ledger.prune(conn, horizon) == 1
        assert ledger.lookup(conn, "old", 0) is None
        assert ledger.lookup(conn, "new", 0) == [(0, 201, None, 1)]
