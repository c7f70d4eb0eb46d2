"""Job states and the job summary both sides read and write."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    """Where a job is in its life. `completed` and `cancelled` are terminal."""

    RECEIVING = "receiving"
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class JobMeta:
    """A job's stored summary (the meta hash), typed."""

    job_id: str
    state: JobState
    entity: str
    database: str
    user: str
    total: int
    chunks: int
    chunk_size: int
    processed: int
    created: int
    updated: int
    failed: int
    not_processed: int
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    progress_ts: float
    """Epoch seconds of the job's last sign of progress (a chunk claimed or recorded)."""
    dry_run: bool = False
    """Rows are checked and rehearsed in a rolled-back transaction, never written."""
    round: int = 0
    """How many times the job was rerun (`POST /jobs/{id}/retry`; `retries` on the wire)."""
    callback_url: str | None = None
    """Where the job summary is POSTed when the job finishes."""
    queue: str | None = None
    """The Celery queue of the job's chunks (None: the default queue)."""
    window: int = 0
    """Chunks of the job queued at a time (`job_window_chunks` when it was sealed; 0: all
    at once)."""
    submitted_ts: float | None = None
    """Epoch seconds of the submission: the job's score in the listing indexes (None: a
    job stored before those indexes had state parts)."""

    @property
    def ledger_id(self) -> str:
        """The ledger key of this round's chunks: a rerun applies its rows anew."""
        return self.job_id if self.round == 0 else f"{self.job_id}#{self.round}"

    @classmethod
    def from_hash(cls, job_id: str, raw: dict[str, str]) -> JobMeta:
        return cls(
            job_id=job_id,
            state=JobState(raw["state"]),
            entity=raw["entity"],
            database=raw["database"],
            user=raw.get("user", ""),
            total=int(raw.get("total", 0)),
            chunks=int(raw.get("chunks", 0)),
            chunk_size=int(raw["chunkSize"]),
            processed=int(raw.get("processed", 0)),
            created=int(raw.get("created", 0)),
            updated=int(raw.get("updated", 0)),
            failed=int(raw.get("failed", 0)),
            not_processed=int(raw.get("notProcessed", 0)),
            submitted_at=raw["submittedAt"],
            started_at=raw.get("startedAt") or None,
            finished_at=raw.get("finishedAt") or None,
            progress_ts=float(raw.get("progressTs", 0)),
            dry_run=raw.get("dryRun") == "1",
            round=int(raw.get("round", 0)),
            callback_url=raw.get("callbackUrl") or None,
            queue=raw.get("queue") or None,
            window=int(raw.get("window", 0)),
            submitted_ts=float(raw["submittedTs"]) if raw.get("submittedTs") else None,
        )

    def public(self) -> dict[str, Any]:
        """The `data` of `GET /jobs/{jobId}`."""
        return {
            "jobId": self.job_id,
            "state": self.state.value,
            "database": self.database,
            "total": self.total,
            "processed": self.processed,
            "created": self.created,
            "updated": self.updated,
            "failed": self.failed,
            "notProcessed": self.not_processed,
            "submittedAt": self.submitted_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "dryRun": self.dry_run,
            "retries": self.round,
            "chunks": self.chunks,
        }
