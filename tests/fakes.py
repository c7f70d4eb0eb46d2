"""Stub siblings of the real backends, for fast unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class RecordingEnqueuer:
    """The stub of `claimpay.messaging.CeleryEnqueuer`: records what would be sent."""

    queued: list[tuple[str, int]] = field(default_factory=list)
    """`(job_id, chunk_no)` of every chunk queued, in order (an in-process worker may run
    and clear them)."""
    sent: list[tuple[str, int, str | None]] = field(default_factory=list)
    """`(job_id, chunk_no, queue)` of every chunk queued; never cleared."""
    queues: dict[str, str | None] = field(default_factory=dict)
    """The queue each job's chunks were last sent to, by job ID."""

    def enqueue_chunks(
        self,
        job_id: str,
        chunk_nos: Sequence[int],
        rows: Sequence[int | None],
        *,
        queue: str | None = None,
    ) -> None:
        self.queued.extend((job_id, chunk_no) for chunk_no in chunk_nos)
        self.sent.extend((job_id, chunk_no, queue) for chunk_no in chunk_nos)
        self.queues[job_id] = queue
