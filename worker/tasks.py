"""Celery tasks: thin translations of messages into calls of `worker.chunks`."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from claimpay.messaging import APPLY_CHUNK, NOTIFY_JOB
from claimpay.settings import Settings
from worker.backoff import compute_backoff
from worker.chunks import give_up_chunk, run_chunk
from worker.context import ContextHolder, WorkerContext
from worker.errors import TransientError
from worker.heartbeat import lease_owner
from worker.outbox import Outbox


def register_tasks(app: Celery, settings: Settings, contexts: ContextHolder) -> Any:
    """Register claimpay's tasks on `app`; returns the chunk task."""

    @app.task(name=APPLY_CHUNK, bind=True, ignore_result=True, max_retries=settings.max_retries)
    def apply_chunk(self: Task, job_id: str, chunk_no: int) -> None:
        """Apply one stored chunk; retry with backoff and jitter while the database is down."""
        ctx = contexts.get()
        owner = lease_owner()
        try:
            finished = run_chunk(ctx, job_id, chunk_no, owner, self.request.hostname)
        except TransientError as exc:
            attempt = self.request.retries
            if attempt >= settings.max_retries:
                finished = give_up_chunk(ctx, job_id, chunk_no, attempts=attempt + 1)
                _notify_if_wanted(ctx, job_id, finished)
                return
            delay = compute_backoff(attempt, settings.retry_backoff_s, settings.retry_backoff_max_s)
            # The chunk stays leased while the retry waits, so recovery leaves it alone;
            # if this worker dies meanwhile, the lease lapses and recovery takes over. A
            # worker that gave the chunk up (stuck) leaves the lease to whoever took it.
            ctx.store.hold_for_retry(job_id, chunk_no, int(delay) + settings.lease_ttl_s, owner)
            raise self.retry(exc=exc, countdown=delay) from exc
        _notify_if_wanted(ctx, job_id, finished)

    def _notify_if_wanted(ctx: WorkerContext, job_id: str, finished: bool) -> None:
        if not finished:  # most chunks: no need to read the job
            return
        meta = ctx.store.meta(job_id)
        if meta is not None and meta.callback_url:
            # Delivered by the node's webhook senders (`worker.sender`), never in this pool.
            Outbox(ctx.store).schedule(job_id)

    @app.task(name=NOTIFY_JOB, ignore_result=True)
    def notify_job(job_id: str) -> None:
        """A webhook queued by an earlier version: handed to the outbox, not sent here."""
        Outbox(contexts.get().store).schedule(job_id)

    return apply_chunk
