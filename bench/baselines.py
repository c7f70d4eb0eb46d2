"""Reference points claimpay is judged against, on the same PostgreSQL: the naive ORM
(merge + commit per row) and the bulk-load limit (COPY + one merge) driven from Python.
The strongest limit, the same COPY + merge driven by `psql`, is `bench.psql`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.config import USER
from bench.cpu import cpu_seconds
from bench.loader import PreparedBatch
from bench.measures import Throughput
from bench.psql import STAGE, merge_sql
from bench.rows import COLUMNS, batch, existing_keys, table_row
from bench.tables import TABLE, count_postgres, reset_postgres
from worker.models import ClaimPromptPay


class WrongCount(Exception):
    """Raised when a measurement did not create and update the rows it should have."""


def naive_orm(sqlalchemy_url: str, libpq_url: str, count: int, first_key: int) -> Throughput:
    """`session.merge(ClaimPromptPay(...))` and `commit()` for each row, half of them new."""
    existing = existing_keys(count, first_key)
    reset_postgres(libpq_url, existing)
    rows = batch(count, first_key)
    engine = create_engine(sqlalchemy_url)
    try:
        with Session(engine) as session:
            started = time.perf_counter()
            for row in rows:
                now = datetime.now(UTC).replace(tzinfo=None)
                session.merge(ClaimPromptPay(**table_row(row, now, USER)))
                session.commit()
            seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    stored = count_postgres(libpq_url)
    if stored != count:
        raise WrongCount(f"naive ORM: {stored} rows stored, expected {count}")
    return Throughput(count, seconds, created=count - len(existing), updated=len(existing))


def copy_merge(libpq_url: str, batch: PreparedBatch) -> Throughput:
    """COPY every row of `batch` into a temporary table with psycopg (`write_row` of each
    row's values, prepared before the clock starts), then one `INSERT ... SELECT ... ON
    CONFLICT DO UPDATE`, in one transaction on one connection."""
    count = batch.rows
    existing = existing_keys(count, batch.first_key)
    reset_postgres(libpq_url, existing)
    rows = batch.table_rows()
    cols = ", ".join(COLUMNS)
    merge = merge_sql(TABLE, COLUMNS, COLUMNS[0])
    with psycopg.connect(libpq_url) as conn:
        backend = conn.info.backend_pid
        cpu_before = time.process_time(), cpu_seconds(backend)
        started = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE {STAGE} (LIKE {TABLE}) ON COMMIT DROP")
            with cursor.copy(f"COPY {STAGE} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(merge)
            counted = cursor.fetchone()
        conn.commit()
        seconds = time.perf_counter() - started
        cpu: dict[str, float | int | str] = {
            "cpu_s_client": round(time.process_time() - cpu_before[0], 2),
            "cpu_s_postgresql": round(cpu_seconds(backend) - cpu_before[1], 2),
        }
    created, updated = (int(counted[0]), int(counted[1])) if counted else (0, 0)
    if (created, updated) != (count - len(existing), len(existing)):
        raise WrongCount(f"COPY + merge: created {created}, updated {updated}")
    return Throughput(count, seconds, created=created, updated=updated, extra=cpu)
