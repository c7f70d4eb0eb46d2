"""The chunk ledger: a chunk's outcomes committed in the same transaction as its rows.

A chunk that runs again (redelivery after a crash, a duplicate message) finds its entry and
returns the stored outcomes: the rows are applied exactly once, the results stay the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, select

from claimpay.envelope import Outcome, decode_outcomes, encode_outcomes
from worker.models import ChunkLedger

_ledger = cast(Table, ChunkLedger.__table__)
# Built once: a chunk runs both, and building a statement costs more than running it.
_LOOKUP = select(_ledger.c.outcomes).where(
    _ledger.c.job_id == bindparam("job_id"), _ledger.c.chunk_no == bindparam("chunk_no")
)
_RECORD = _ledger.insert()


def lookup(conn: Connection, job_id: str, chunk_no: int) -> list[Outcome] | None:
    """The outcomes stored for this chunk, or None if it was never applied."""
    blob = conn.execute(_LOOKUP, {"job_id": job_id, "chunk_no": chunk_no}).scalar_one_or_none()
    return None if blob is None else decode_outcomes(blob)


def record(
    conn: Connection, job_id: str, chunk_no: int, outcomes: list[Outcome], now: datetime
) -> None:
    """Store the chunk's outcomes; fails (IntegrityError) if another run recorded it first."""
    values = {"job_id": job_id, "chunk_no": chunk_no, "applied_at": now}
    conn.execute(_RECORD, {**values, "outcomes": encode_outcomes(outcomes)})


def prune(conn: Connection, older_than: datetime) -> int:
    """Forget entries older than any message that could still be redelivered."""
    return conn.execute(delete(_ledger).where(_ledger.c.applied_at < older_than)).rowcount


def prune_horizon(now: datetime, ttl_s: int) -> datetime:
    return now - timedelta(seconds=ttl_s)
