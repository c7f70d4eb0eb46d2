"""Task names, the Celery configuration both sides share, and sending chunk tasks by name.

The producer (and the worker's recovery sweep) send tasks by name through an app built
here; neither imports the other. The worker registers its tasks on an app built from the
same configuration, so broker options such as the visibility timeout always agree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from celery import Celery
from kombu.exceptions import BatchPublishError

from claimpay.settings import Settings

log = logging.getLogger("claimpay.messaging")

APPLY_CHUNK = "claimpay.apply_chunk"
"""Task `(job_id, chunk_no)`: apply one stored chunk of a job's rows."""
NOTIFY_JOB = "claimpay.notify_job"
"""Task `(job_id,)` of earlier versions (webhooks now wait in an outbox in Redis, sent by
threads of each worker node's main process): still consumed, handed to the outbox."""


def celery_config(settings: Settings) -> dict[str, Any]:
    """At-least-once delivery with an exactly-once effect; see the README's design notes."""
    return {
        "broker_url": settings.require_redis_url(),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": settings.queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


FAST_QUEUE_SUFFIX = ".fast"


def fast_queue(queue: str) -> str:
    """The queue of small jobs next to `queue`."""
    return queue + FAST_QUEUE_SUFFIX


def worker_queues(settings: Settings) -> list[str]:
    """The queues a worker consumes by default: the main one and, if on, the fast one."""
    if settings.fast_queue_max_rows == 0:
        return [settings.queue]
    return [settings.queue, fast_queue(settings.queue)]


def queue_for(settings: Settings, rows: int) -> str:
    """The queue of a job of `rows` rows: small jobs never wait behind huge ones."""
    if 0 < rows <= settings.fast_queue_max_rows:
        return fast_queue(settings.queue)
    return settings.queue


def make_celery(settings: Settings, main: str = "claimpay") -> Celery:
    """A Celery app configured for claimpay; connects lazily, on first use."""
    app = Celery(main, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


class Enqueuer(Protocol):
    """Something that queues a job's chunks for the workers."""

    def enqueue_chunks(
        self,
        job_id: str,
        chunk_nos: Sequence[int],
        rows: Sequence[int | None],
        *,
        queue: str | None = None,
    ) -> None:
        """Queue task `(job_id, chunk_no)` for every chunk, in order, on `queue` (None: the
        default queue); `rows` (the chunks' row counts, None when unknown) only label the
        tasks in Flower."""


PUBLISH_BATCH_OPS = 16
"""Redis commands per pipeline when queuing a job's chunks (two per chunk)."""


class CeleryEnqueuer:
    """Queues chunk tasks through Celery by task name, on one broker connection per call."""

    def __init__(self, app: Celery, queue: str) -> None:
        self._app = app
        self._queue = queue

    def enqueue_chunks(
        self,
        job_id: str,
        chunk_nos: Sequence[int],
        rows: Sequence[int | None],
        *,
        queue: str | None = None,
    ) -> None:
        # Buffered into pipelines of a few messages (a task and its task-sent event each),
        # flushed every PUBLISH_BATCH_OPS commands: far fewer round trips. A failed flush
        # is not retried by kombu and drops what it held: then every chunk is sent again,
        # one by one with Celery's retries (a chunk sent twice is harmless).
        try:
            with self._app.producer_or_acquire() as producer, producer.batch(PUBLISH_BATCH_OPS):
                self._send(producer, job_id, chunk_nos, rows, queue)
        except BatchPublishError:
            log.warning("job %s: batched queuing failed; queuing chunk by chunk", job_id)
            with self._app.producer_or_acquire() as producer:
                self._send(producer, job_id, chunk_nos, rows, queue)

    def _send(
        self,
        producer: Any,
        job_id: str,
        chunk_nos: Sequence[int],
        rows: Sequence[int | None],
        queue: str | None,
    ) -> None:
        for chunk_no, count in zip(chunk_nos, rows, strict=True):
            self._app.send_task(
                APPLY_CHUNK,
                args=(job_id, chunk_no),
                queue=queue or self._queue,
                producer=producer,
                argsrepr=f"(job={job_id}, chunk={chunk_no}, rows={count or '?'})",
            )
