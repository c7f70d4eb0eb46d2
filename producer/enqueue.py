"""Sending chunk tasks by name; the producer never imports the worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from celery import Celery

from claimpay.messaging import APPLY_CHUNK


class Enqueuer(Protocol):
    """Something that queues a job's chunks for the workers."""

    def enqueue_chunks(self, job_id: str, chunk_nos: Sequence[int], rows: Sequence[int]) -> None:
        """Queue task `(job_id, chunk_no)` for every chunk, in order."""


class CeleryEnqueuer:
    """Queues chunk tasks through Celery, on one broker connection per call."""

    def __init__(self, app: Celery, queue: str) -> None:
        self._app = app
        self._queue = queue

    def enqueue_chunks(self, job_id: str, chunk_nos: Sequence[int], rows: Sequence[int]) -> None:
        with self._app.producer_or_acquire() as producer:
            for chunk_no, count in zip(chunk_nos, rows, strict=True):
                self._app.send_task(
                    APPLY_CHUNK,
                    args=(job_id, chunk_no),
                    queue=self._queue,
                    producer=producer,
                    argsrepr=f"(job={job_id}, chunk={chunk_no}, rows={count})",
                )
