"""Run one chunk of a job end to end: job store in, database, job store out."""

from __future__ import annotations

import logging
import time

from claimpay.clock import utc_now
from claimpay.entities import get_entity
from claimpay.envelope import Outcome
from worker import ledger
from worker.apply import INTERNAL, UNAVAILABLE, apply_chunk, failed_chunk
from worker.context import WorkerContext
from worker.errors import TransientError
from worker.models import ENTITY_TABLES

log = logging.getLogger("claimpay.worker")

PRUNE_EVERY_S = 600.0


def run_chunk(ctx: WorkerContext, job_id: str, chunk_no: int) -> None:
    """Apply chunk `chunk_no` of `job_id` and record its results; a no-op if it is done.

    Raises `TransientError` when the database is unavailable (the task retries).
    """
    meta = ctx.store.meta(job_id)
    if meta is None:
        log.warning("job %s chunk %s: job not found (expired?); skipped", job_id, chunk_no)
        return
    if ctx.store.is_chunk_done(job_id, chunk_no):
        log.info("job %s chunk %s: already done; skipped", job_id, chunk_no)
        return
    ctx.store.mark_started(job_id)
    spec = get_entity(meta.entity)
    rows = ctx.store.load_rows(job_id, chunk_no)
    started = time.perf_counter()
    try:
        engine = ctx.engines.get(meta.database)
        outcomes = apply_chunk(
            engine, spec, ENTITY_TABLES[spec.table], job_id, chunk_no, rows, meta.user
        )
    except TransientError:
        raise
    except Exception as exc:
        log.exception("job %s chunk %s: failed with %s", job_id, chunk_no, type(exc).__name__)
        body = f"Internal error while applying the row ({type(exc).__name__})"
        outcomes = failed_chunk(spec, rows, INTERNAL, body)
    _record(ctx, job_id, chunk_no, outcomes, time.perf_counter() - started)
    _maybe_prune(ctx, meta.database)


def give_up_chunk(ctx: WorkerContext, job_id: str, chunk_no: int, attempts: int) -> None:
    """Retries are spent: the chunk's valid rows get 503, and the job can still complete."""
    meta = ctx.store.meta(job_id)
    if meta is None or ctx.store.is_chunk_done(job_id, chunk_no):
        return
    rows = ctx.store.load_rows(job_id, chunk_no)
    body = f"Database unavailable after {attempts} attempts; the row was not applied"
    outcomes = failed_chunk(get_entity(meta.entity), rows, UNAVAILABLE, body)
    _record(ctx, job_id, chunk_no, outcomes, 0.0)


def _record(
    ctx: WorkerContext, job_id: str, chunk_no: int, outcomes: list[Outcome], seconds: float
) -> None:
    completed = ctx.store.record_chunk(job_id, chunk_no, outcomes)
    log.info(
        "job %s chunk %s: %d rows in %.3fs%s",
        job_id,
        chunk_no,
        len(outcomes),
        seconds,
        "; job completed" if completed else "",
    )


def _maybe_prune(ctx: WorkerContext, database: str) -> None:
    """Now and then, drop ledger entries older than the result TTL."""
    if time.monotonic() - ctx.last_prune < PRUNE_EVERY_S:
        return
    ctx.last_prune = time.monotonic()
    try:
        with ctx.engines.get(database).begin() as conn:
            ledger.prune(conn, ledger.prune_horizon(utc_now(), ctx.settings.result_ttl_s))
    except Exception:  # pruning is housekeeping; the next run tries again
        log.warning("ledger prune failed on %s", database, exc_info=True)
