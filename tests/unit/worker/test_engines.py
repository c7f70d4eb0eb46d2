"""Worker engines: the connection bounds they set, and cancelling a stuck call."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from claimpay.engines import DbLimits
from tests.factories import make_settings
from worker.context import db_limits
from worker.engines import cancel_in_use, make_engine


class Captured(Exception):
    """Stops a connect once its arguments are seen."""


def connect_params(url: str, limits: DbLimits) -> dict[str, Any]:
    """The arguments the engine would hand libpq, without any server."""
    engine = make_engine(url, limits=limits)
    seen: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def _capture(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        seen.update(params)
        raise Captured

    with pytest.raises(Captured):
        engine.connect()
    engine.dispose()
    return seen


def test_postgresql_connections_bound_idle_transactions_and_silent_peers() -> None:
    limits = db_limits(make_settings())
    params = connect_params("postgresql+psycopg://u@db.invalid/x", limits)
    assert "-c idle_in_transaction_session_timeout=15000" in params["options"]
    assert "-c statement_timeout=300000" in params["options"]
    assert params["tcp_user_timeout"] == 15000
    assert (params["keepalives"], params["keepalives_idle"]) == (1, 5)
    assert (params["keepalives_interval"], params["keepalives_count"]) == (2, 3)


def test_the_bounds_follow_the_settings_and_zero_turns_them_off() -> None:
    settings = make_settings(
        db_idle_in_transaction_timeout_s=40, db_tcp_user_timeout_s=0, db_keepalives_idle_s=0
    )
    params = connect_params("postgresql+psycopg://u@db.invalid/x", db_limits(settings))
    assert "-c idle_in_transaction_session_timeout=40000" in params["options"]
    assert "tcp_user_timeout" not in params
    assert "keepalives" not in params


def test_sqlite_ignores_the_network_bounds(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/a.db", limits=DbLimits(tcp_user_timeout_s=9))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_a_stuck_call_of_this_process_is_cancelled(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/a.db")
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text(endless))
        except OperationalError as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while worker.is_alive() and time.monotonic() < deadline:
        cancel_in_use()  # an interrupt before the statement starts is a no-op: ask again
        worker.join(0.05)
    assert not worker.is_alive(), "the endless query was never cancelled"
    assert "interrupted" in str(failure[0])
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]  # back in the pool
    engine.dispose()
