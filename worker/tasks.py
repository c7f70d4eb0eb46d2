"""Celery tasks: thin translations of messages into calls of `worker.chunks`."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from claimpay.messaging import APPLY_CHUNK
from claimpay.settings import Settings
from worker.backoff import compute_backoff
from worker.chunks import give_up_chunk, run_chunk
from worker.context import ContextHolder
from worker.errors import TransientError


def register_tasks(app: Celery, settings: Settings, contexts: ContextHolder) -> Any:
    """Register claimpay's tasks on `app`; returns the chunk task."""

    @app.task(name=APPLY_CHUNK, bind=True, ignore_result=True, max_retries=settings.max_retries)
    def apply_chunk(self: Task, job_id: str, chunk_no: int) -> None:
        """Apply one stored chunk; retry with backoff and jitter while the database is down."""
        ctx = contexts.get()
        try:
            run_chunk(ctx, job_id, chunk_no)
        except TransientError as exc:
            attempt = self.request.retries
            if attempt >= settings.max_retries:
                give_up_chunk(ctx, job_id, chunk_no, attempts=attempt + 1)
                return
            delay = compute_backoff(attempt, settings.retry_backoff_s, settings.retry_backoff_max_s)
            # The chunk stays leased while the retry waits, so recovery leaves it alone;
            # if this worker dies meanwhile, the lease lapses and recovery takes over.
            ctx.store.hold_for_retry(job_id, chunk_no, int(delay) + settings.lease_ttl_s)
            raise self.retry(exc=exc, countdown=delay) from exc

    return apply_chunk
