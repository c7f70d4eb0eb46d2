"""Run one chunk of a job end to end: claim it, apply it, record its results."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from claimpay.clock import utc_now
from claimpay.entities import EntitySpec, get_entity
from claimpay.envelope import NOT_PROCESSED_BODY, Outcome, RowStatus, outcome
from claimpay.jobs import JobMeta
from claimpay.jobstore import Claim
from claimpay.logs import bind
from claimpay.rows import usable_key
from worker import ledger, metrics
from worker.apply import (
    Valid,
    apply_valid,
    failed_valid,
    split_valid,
    split_valid_stored,
)
from worker.context import WorkerContext
from worker.engines import cancel_in_use
from worker.errors import TransientError
from worker.heartbeat import Lease, lease_owner, leased
from worker.models import ENTITY_TABLES

log = logging.getLogger("claimpay.worker")

PRUNE_EVERY_S = 600.0


def run_chunk(
    ctx: WorkerContext,
    job_id: str,
    chunk_no: int,
    owner: str | None = None,
    node: str | None = None,
) -> bool:
    """Apply chunk `chunk_no` of `job_id` and record its results, unless it is done, held
    by a live worker, or its job was cancelled (then its rows are recorded as not
    processed). Returns True when this chunk finished the job. `owner` names the claim
    (default: a new one), `node` the worker node (marked stalled if its call gets stuck).

    Raises `TransientError` when the database is unavailable (the task retries).
    """
    settings = ctx.settings
    owner = owner or lease_owner()
    claim = ctx.store.claim(job_id, chunk_no, owner, settings.lease_ttl_s, settings.max_deliveries)
    meta = ctx.store.meta(job_id)
    bind(database=meta.database if meta else None)
    if meta is None or claim in (Claim.DONE, Claim.BUSY, Claim.MISSING):
        log.info("job %s chunk %s: %s; skipped", job_id, chunk_no, claim.value)
        return False
    if claim is Claim.CANCELLED:
        return _skip_cancelled(ctx, meta, chunk_no)
    if claim is Claim.POISON:
        body = "Not applied: the chunk failed repeatedly"
        return _give_up(ctx, meta, chunk_no, RowStatus.INTERNAL_ERROR, body)
    with leased(
        ctx.store,
        job_id,
        chunk_no,
        owner,
        settings.lease_ttl_s,
        call_timeout_s=settings.db_call_timeout_s,
        node=node,
        on_stall=cancel_in_use,
    ) as lease:
        return _apply(ctx, meta, chunk_no, lease)


def give_up_chunk(ctx: WorkerContext, job_id: str, chunk_no: int, attempts: int) -> bool:
    """Retries are spent: the chunk's valid rows get 503, and the job can still finish."""
    meta = ctx.store.meta(job_id)
    if meta is None:
        return False
    # "may not": a COMMIT whose answer was lost may have gone through; a rerun of the job
    # (POST /jobs/{id}/retry) settles it either way, applying the row exactly once.
    body = f"Database unavailable after {attempts} attempts; the row may not have been applied"
    return _give_up(ctx, meta, chunk_no, RowStatus.UNAVAILABLE, body)


def _apply(ctx: WorkerContext, meta: JobMeta, chunk_no: int, lease: Lease) -> bool:
    spec = get_entity(meta.entity)
    started = time.perf_counter()
    try:
        valid, invalid = _load(ctx, meta, chunk_no, spec)
    except RedisError:
        raise  # the job store is down: the task fails and the chunk runs again later
    except Exception as exc:  # a fault of the validation itself: never loop on it
        log.exception("job %s chunk %s: failed with %s", meta.job_id, chunk_no, type(exc).__name__)
        body = f"Internal error while checking the row ({type(exc).__name__})"
        unchecked = _unchecked(ctx, meta, chunk_no, spec, RowStatus.INTERNAL_ERROR, body)
        return _record(ctx, meta, chunk_no, unchecked, 0)
    try:
        engine = ctx.engines.get(meta.database)
        table = ENTITY_TABLES[spec.table]
        with lease.database_call():
            outcomes = apply_valid(
                engine,
                spec,
                table,
                meta.ledger_id,
                chunk_no,
                valid,
                invalid,
                meta.user,
                dry_run=meta.dry_run,
            )
    except TransientError:
        raise
    except Exception as exc:
        log.exception("job %s chunk %s: failed with %s", meta.job_id, chunk_no, type(exc).__name__)
        body = f"Internal error while applying the row ({type(exc).__name__})"
        outcomes = failed_valid(spec, valid, invalid, RowStatus.INTERNAL_ERROR, body)
    finished = _record(ctx, meta, chunk_no, outcomes, time.perf_counter() - started)
    _maybe_prune(ctx, meta.database)
    return finished


def _load(
    ctx: WorkerContext, meta: JobMeta, chunk_no: int, spec: EntitySpec
) -> tuple[Valid, list[Outcome]]:
    """The chunk's valid rows, and the 400s of its invalid ones (a rerun round: only the
    rows it reruns)."""
    if meta.round > 0:
        return split_valid(spec, ctx.store.load_rows(meta.job_id, chunk_no, rerun_only=True))
    return split_valid_stored(spec, ctx.store.load_elements(meta.job_id, chunk_no))


def _unchecked(
    ctx: WorkerContext,
    meta: JobMeta,
    chunk_no: int,
    spec: EntitySpec,
    status: RowStatus,
    body: str,
) -> list[Outcome]:
    """`status` with `body` for every row of the chunk, without validating them."""
    rows = ctx.store.load_rows(meta.job_id, chunk_no, rerun_only=meta.round > 0)
    return [outcome(index, status, usable_key(spec, raw), body) for index, raw in rows]


def _skip_cancelled(ctx: WorkerContext, meta: JobMeta, chunk_no: int) -> bool:
    spec = get_entity(meta.entity)
    outcomes = _unchecked(ctx, meta, chunk_no, spec, RowStatus.NOT_PROCESSED, NOT_PROCESSED_BODY)
    return _record(ctx, meta, chunk_no, outcomes, 0.0, cancelled=True)


def _give_up(
    ctx: WorkerContext, meta: JobMeta, chunk_no: int, status: RowStatus, body: str
) -> bool:
    spec = get_entity(meta.entity)
    try:
        outcomes = failed_valid(spec, *_load(ctx, meta, chunk_no, spec), status, body)
    except RedisError:
        raise
    except Exception:  # even when the rows cannot be checked, the job must end
        log.exception("job %s chunk %s: rows not checked while giving up", meta.job_id, chunk_no)
        outcomes = _unchecked(ctx, meta, chunk_no, spec, status, body)
    return _record(ctx, meta, chunk_no, outcomes, 0.0)


def _record(
    ctx: WorkerContext,
    meta: JobMeta,
    chunk_no: int,
    outcomes: list[Outcome],
    seconds: float,
    cancelled: bool = False,
) -> bool:
    merged: list[Outcome] | None = None
    if meta.round:
        # A rerun round applied some rows of the chunk; the others keep their result.
        by_index = {item.position: item for item in ctx.store.stored_results(meta.job_id, chunk_no)}
        by_index.update((item.position, item) for item in outcomes)
        merged = [by_index[index] for index in sorted(by_index)]
    finished = ctx.store.record_chunk(meta.job_id, chunk_no, outcomes, merged, meta.round)
    if not finished:
        _queue_next(ctx, meta, every=cancelled)
    metrics.current().chunk_recorded(meta.database, outcomes, seconds, meta.dry_run)
    log.info(
        "job %s chunk %s: %d rows in %.3fs%s",
        meta.job_id,
        chunk_no,
        len(outcomes),
        seconds,
        "; job finished" if finished else "",
    )
    return finished


def _queue_next(ctx: WorkerContext, meta: JobMeta, every: bool) -> None:
    """A chunk of the job is recorded: queue the job's next chunk that waits to be queued,
    if any (`job_window_chunks`), or, with `every` (the job is cancelled: they are skipped
    at once), all of them. Should this fail, the job stalls once its queued chunks are
    done, and the recovery sweep fills its window up."""
    if ctx.enqueuer is None or meta.round or not 0 < meta.window < meta.chunks:
        return
    try:
        if taken := ctx.store.take_waiting(meta.job_id, None if every else 1):
            ctx.enqueuer.enqueue_chunks(meta.job_id, taken, [None] * len(taken), queue=meta.queue)
    except Exception:  # the chunk itself is recorded
        log.warning("job %s: queuing its next chunks failed", meta.job_id, exc_info=True)


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
