"""Storing a batch: begin the job, stream its rows into the job store, seal and queue it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

import anyio.to_thread

from claimpay.callbacks import undeliverable
from claimpay.entities import EntitySpec
from claimpay.jobs import JobMeta
from claimpay.logs import bind
from claimpay.messaging import queue_for
from claimpay.settings import Settings
from producer.deps import Services
from producer.errors import CallbackNotAllowed, CallbacksDisabled, InvalidCallback
from producer.intake import ChunkPlanner, MalformedBody, receive_array
from producer.limits import IntakeLimits

log = logging.getLogger("claimpay.producer")


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """What the caller asked of this batch besides its rows."""

    chunk_size: int
    dry_run: bool = False
    callback_url: str | None = None

    @classmethod
    def checked(
        cls, settings: Settings, dry_run: bool, callback_url: str | None, chunk_size: int | None
    ) -> BatchOptions:
        """The options; `InvalidRequest` naming the one that cannot be honoured."""
        if callback_url is not None:
            if why := undeliverable(callback_url):
                raise InvalidCallback(f"callbackUrl {why}.")
            if not settings.callback_host_allowed(urlsplit(callback_url).hostname or ""):
                raise CallbackNotAllowed(
                    "callbackUrl names a host outside CLAIMPAY_WEBHOOK_ALLOWED_HOSTS."
                )
            if settings.webhook_secret is None:
                raise CallbacksDisabled("callbackUrl needs CLAIMPAY_WEBHOOK_SECRET on the server.")
        return cls(chunk_size or settings.chunk_size, dry_run, callback_url)


async def store_batch(
    body: AsyncIterator[bytes],
    services: Services,
    spec: EntitySpec,
    job_id: str,
    database: str,
    user: str,
    options: BatchOptions,
) -> JobMeta:
    """Store the rows of `body` as job `job_id` and queue its chunks; `MalformedBody` (with
    the job's ID as its activity ID) or a `BodyRejected` when the body cannot be taken."""
    bind(jobId=job_id, database=database)  # on the request's remaining log lines
    store = services.store
    planner = ChunkPlanner(options.chunk_size)
    begin = partial(
        store.begin,
        job_id,
        entity=spec.name,
        database=database,
        user=user,
        chunk_size=planner.size,
        dry_run=options.dry_run,
        callback_url=options.callback_url,
    )
    await anyio.to_thread.run_sync(begin)
    try:
        total = await receive_array(
            body,
            spec,
            planner,
            partial(store.write_rows, job_id),
            buffer_bytes=services.settings.intake_buffer_bytes,
            limits=IntakeLimits.of(services.settings),
        )
        chunks = planner.chunks()
        queue = queue_for(services.settings, total)
        window = services.settings.job_window_chunks
        seal = partial(
            store.seal,
            job_id,
            total=total,
            chunk_nos=[c for c, _ in chunks],
            queue=queue,
            window=window,
        )
        meta = await anyio.to_thread.run_sync(seal)
    except MalformedBody as exc:
        await anyio.to_thread.run_sync(store.discard, job_id, list(planner.rows_per_chunk))
        exc.activity_id = job_id
        raise
    except BaseException:
        await anyio.to_thread.run_sync(store.discard, job_id, list(planner.rows_per_chunk))
        raise
    # Sealed: the job is stored and will be applied. If queuing fails now, the recovery
    # sweep queues its chunks (a stalled job); deleting it could lose chunks already sent.
    # The first `window` chunks go now; each one recorded queues the next.
    if first := chunks[: meta.window or None]:
        enqueue = partial(
            services.enqueuer.enqueue_chunks,
            job_id,
            [c for c, _ in first],
            [n for _, n in first],
            queue=queue,
        )
        try:
            await anyio.to_thread.run_sync(enqueue)
        except Exception:
            log.warning("job %s: queuing failed; the recovery sweep will queue it", job_id)
    log.info("job %s accepted: %d rows for %s", job_id, total, database)
    return meta
