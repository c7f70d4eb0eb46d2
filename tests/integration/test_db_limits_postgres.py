"""A worker's PostgreSQL connections carry the bounds that free a lost host's locks."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.conftest import require_service
from tests.factories import make_settings
from worker.context import db_limits
from worker.engines import cancel_in_use, make_engine
from worker.errors import is_transient

pytestmark = pytest.mark.postgres

URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_sessions_read_the_idle_transaction_bound_and_libpq_the_tcp_ones() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    settings = make_settings(db_idle_in_transaction_timeout_s=17, db_tcp_user_timeout_s=12)
    engine = make_engine(URL, limits=db_limits(settings))
    try:
        with engine.connect() as conn:
            shown = conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one()
            assert shown == "17s"
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "5min"
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert params["tcp_user_timeout"] == "12000"
            assert (params["keepalives"], params["keepalives_idle"]) == ("1", "5")
    finally:
        engine.dispose()


def test_postgresql_ends_a_transaction_left_idle_and_frees_its_locks() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    engine = make_engine(URL, limits=db_limits(make_settings(db_idle_in_transaction_timeout_s=1)))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # opens the transaction, then sits idle in it
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with engine.connect() as probe:
                    alive = probe.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
                    ).scalar_one()
                if not alive:
                    break
                time.sleep(0.2)
            assert not alive, "the idle transaction's session outlived its bound"
            with pytest.raises(DBAPIError) as raised:
                conn.execute(text("SELECT 1"))
            assert is_transient(raised.value)  # the worker retries the chunk
    finally:
        engine.dispose()


def test_a_stuck_call_is_cancelled_on_the_server() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    engine = make_engine(URL)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_sleep(60)"))
        except OperationalError as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        with engine.connect() as probe:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                sleeping = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'"
                    )
                ).scalar_one()
                probe.rollback()
                if sleeping:
                    break
                time.sleep(0.05)
        assert cancel_in_use() >= 1
        worker.join(20)
        assert not worker.is_alive()
        assert "QueryCanceled" in type(failure[0].orig).__name__  # type: ignore[attr-defined]
    finally:
        worker.join(60)
        engine.dispose()
