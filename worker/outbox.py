"""The webhook outbox: finished jobs whose completion webhook is still to be delivered.

A sorted set in Redis (`StoreKeys.webhooks`), scored by when the next attempt may start.
The worker that records a job's last chunk schedules it (`schedule`); the webhook senders
of every worker node (`worker.sender`) claim due entries (`claim`: rescored past the
attempt's deadline, so an entry whose sender died is due again) and settle them after the
attempt (`settle`: removed, or rescored for a retry). Nothing here runs in the processes
that apply chunks beyond one `schedule` per finished job.
"""

from __future__ import annotations

from dataclasses import dataclass

from claimpay.jobstore import JobStore


@dataclass(frozen=True, slots=True)
class Pending:
    """A claimed webhook: the job, the score of the claim, and the attempt it is (from 1)."""

    job_id: str
    score: int
    attempt: int


class Outbox:
    """The deployment's pending webhooks, in the job store (`JobStore`'s webhook part;
    its scripts are `claimpay.lua`'s `*_WEBHOOK*`)."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def schedule(self, job_id: str, delay_s: float = 0.0) -> None:
        """Deliver the job's webhook (again) from now on, with a fresh attempt count."""
        self._store.schedule_webhook(job_id, _ms(delay_s))

    def claim(self, limit: int, lease_s: float, now: float | None = None) -> list[Pending]:
        """Take up to `limit` due webhooks for `lease_s` seconds (the attempt's deadline
        and a margin); an entry not settled by then is due again. `now` (Unix seconds)
        stands in for Redis's clock in tests."""
        if limit <= 0:
            return []
        claimed = self._store.claim_webhooks(limit, _ms(lease_s), None if now is None else _ms(now))
        return [Pending(job_id, score, attempt) for job_id, score, attempt in claimed]

    def settle(self, pending: Pending, retry_in_s: float | None = None) -> bool:
        """Forget the webhook (delivered, or given up), or make it due in `retry_in_s`."""
        retry_ms = None if retry_in_s is None else _ms(retry_in_s)
        return self._store.settle_webhook(pending.job_id, pending.score, retry_ms)

    def pending(self) -> dict[str, float]:
        """Every pending webhook and when (Unix s, Redis's clock) it is due."""
        return {job_id: due_ms / 1000 for job_id, due_ms in self._store.webhooks_due().items()}


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
