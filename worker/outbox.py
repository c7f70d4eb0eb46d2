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
from typing import cast

from claimpay.jobstore import JobStore

# Scores are Redis's clock (`TIME`, in ms), the one clock of every host (see `claimpay.lua`).
NOW_MS = """
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: outbox, attempts. ARGV: job_id, delay_ms. Due after delay_ms, attempts forgotten.
SCHEDULE = (
    NOW_MS
    + """
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""
)

# KEYS: outbox, attempts. ARGV: lease_ms, limit, now_ms ('' = Redis's clock).
# Takes up to `limit` due entries, each rescored to now + lease and its attempts counted.
# Returns a flat list: job_id, claimed score, attempts (this one included), ...
CLAIM_DUE = (
    NOW_MS
    + """
if ARGV[3] ~= '' then now_ms = tonumber(ARGV[3]) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, ARGV[2])
local claimed = {}
local score = now_ms + tonumber(ARGV[1])
for _, job_id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', score, job_id)
  local attempts = redis.call('HINCRBY', KEYS[2], job_id, 1)
  table.insert(claimed, job_id)
  table.insert(claimed, score)
  table.insert(claimed, attempts)
end
return claimed
"""
)

# KEYS: outbox, attempts. ARGV: job_id, claimed score, retry_ms ('' = done: remove).
# Only the claim that is still current settles: a job scheduled again meanwhile (a retry
# round finished) keeps its new, earlier entry. Returns 1 when settled, 0 when not.
SETTLE = (
    NOW_MS
    + """
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'XX', now_ms + tonumber(ARGV[3]), ARGV[1])
end
return 1
"""
)


@dataclass(frozen=True, slots=True)
class Pending:
    """A claimed webhook: the job, the score of the claim, and the attempt it is (from 1)."""

    job_id: str
    score: int
    attempt: int


class Outbox:
    """The deployment's pending webhooks, in the job store's Redis."""

    def __init__(self, store: JobStore) -> None:
        self._redis = store.redis
        self._keys = [store.store_keys.webhooks, store.store_keys.webhook_attempts]
        self._schedule = store.redis.register_script(SCHEDULE)
        self._claim = store.redis.register_script(CLAIM_DUE)
        self._settle = store.redis.register_script(SETTLE)

    def schedule(self, job_id: str, delay_s: float = 0.0) -> None:
        """Deliver the job's webhook (again) from now on, with a fresh attempt count."""
        self._schedule(keys=self._keys, args=[job_id, _ms(delay_s)])

    def claim(self, limit: int, lease_s: float, now: float | None = None) -> list[Pending]:
        """Take up to `limit` due webhooks for `lease_s` seconds (the attempt's deadline
        and a margin); an entry not settled by then is due again. `now` (Unix seconds)
        stands in for Redis's clock in tests."""
        if limit <= 0:
            return []
        args = [_ms(lease_s), limit, "" if now is None else _ms(now)]
        flat = cast(list[bytes | int], self._claim(keys=self._keys, args=args))
        return [
            Pending(_text(flat[i]), int(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]

    def settle(self, pending: Pending, retry_in_s: float | None = None) -> bool:
        """Forget the webhook (delivered, or given up), or make it due in `retry_in_s`."""
        retry = "" if retry_in_s is None else _ms(retry_in_s)
        args: list[str | int] = [pending.job_id, pending.score, retry]
        return bool(self._settle(keys=self._keys, args=args))

    def pending(self) -> dict[str, float]:
        """Every pending webhook and when (Unix s, Redis's clock) it is due."""
        entries = cast(
            list[tuple[bytes, float]], self._redis.zrange(self._keys[0], 0, -1, withscores=True)
        )
        return {_text(job_id): score / 1000 for job_id, score in entries}


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
