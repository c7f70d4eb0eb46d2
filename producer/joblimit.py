"""Per-API-key limit on unfinished jobs (receiving, queued, running or cancelling).

Each key has a sorted set of its jobs' IDs scored by admission time (`JobStore.admit_job`).
Admitting a job first drops the members that finished (or vanished: a refused body is
discarded), then adds the new one and counts, atomically in one script, so concurrent
submissions of one key on any number of API processes never take more than the limit.
"""

from __future__ import annotations

from claimpay.jobstore import JobStore

STARTING_GRACE_S = 2.0
"""A member without a job hash is still being created (the job hash follows admission in
the same request) for this long; after it, the job is gone (its body was refused)."""


class ActiveJobs:
    """Admits jobs per API key up to `limit` unfinished ones."""

    def __init__(self, store: JobStore, limit: int, grace_s: float = STARTING_GRACE_S) -> None:
        self._store = store
        self._limit = limit
        self.grace_s = grace_s

    def admit(self, key_id: str, job_id: str) -> bool:
        """Count `job_id` against `key_id`; False (and not counted) when over the limit."""
        return self._store.admit_job(key_id, job_id, self._limit, self.grace_s)

    def release(self, key_id: str, job_id: str) -> None:
        """Give back the slot of a job that was refused (its body never became a job)."""
        self._store.release_job(key_id, job_id)
