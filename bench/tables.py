"""The `claim_prompt_pay` table before a measurement: emptied, then the keys that must
already exist loaded, the same way on every run so that measurements compare."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, func, insert, select, text

from bench.rows import COLUMNS, preload_rows
from worker.models import ChunkLedger, ClaimPromptPay

TABLE = ClaimPromptPay.__tablename__
LEDGER = ChunkLedger.__tablename__


def reset_postgres(url: str, existing: Iterable[int]) -> None:
    """Empty the table and the chunk ledger, COPY the `existing` keys in, then VACUUM
    ANALYZE so the planner and the visibility map start alike for every measurement, and
    CHECKPOINT so that no earlier measurement's dirty pages are written during this one."""
    with psycopg.connect(url) as conn:
        conn.execute(f"TRUNCATE {TABLE}, {LEDGER}")
        with conn.cursor() as cursor:
            copy_sql = f"COPY {TABLE} ({', '.join(COLUMNS)}) FROM STDIN"
            with cursor.copy(copy_sql) as copy:
                for row in preload_rows(existing):
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        # A role without pg_checkpoint leaves it to the server's own checkpoints.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def count_postgres(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def reset_sqlite(path: Path, existing: range) -> None:
    """Empty the table and the ledger of the SQLite file and insert the `existing` keys."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {TABLE}"))  # noqa: S608
            conn.execute(text(f"DELETE FROM {LEDGER}"))  # noqa: S608
            rows = [dict(zip(COLUMNS, row, strict=True)) for row in preload_rows(existing)]
            if rows:
                conn.execute(insert(ClaimPromptPay), rows)
    finally:
        engine.dispose()


def count_sqlite(path: Path) -> int:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(ClaimPromptPay)).scalar_one()
    finally:
        engine.dispose()
    return int(count)
