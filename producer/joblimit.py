"""Per-API-key limit on unfinished jobs (receiving, queued, running or cancelling).

Each key has a sorted set of its jobs' IDs scored by admission time. Admitting a job first
drops the members that finished (or vanished: a refused body is discarded), then adds the
new one and counts, atomically in one script, so concurrent submissions of one key on any
number of API processes never take more than the limit.
"""

from __future__ import annotations

import time
from typing import cast

from claimpay.jobs import JobState
from claimpay.jobstore import JobStore

ADMIT_JOB = """
-- KEYS[1] the key's job set; ARGV: job id, now, limit, ttl seconds
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[3]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

STARTING_GRACE_S = 2.0
"""A member without a job hash is still being created (the job hash follows admission in
the same request) for this long; after it, the job is gone (its body was refused)."""


class ActiveJobs:
    """Admits jobs per API key up to `limit` unfinished ones."""

    def __init__(self, store: JobStore, limit: int, grace_s: float = STARTING_GRACE_S) -> None:
        self._store = store
        self._limit = limit
        self.grace_s = grace_s
        self._admit = store.redis.register_script(ADMIT_JOB)

    def admit(self, key_id: str, job_id: str) -> bool:
        """Count `job_id` against `key_id`; False (and not counted) when over the limit."""
        members = self._key(key_id)
        self._forget_finished(members)
        admitted = self._admit(
            keys=[members], args=[job_id, time.time(), self._limit, self._store.ttl_s]
        )
        return bool(admitted)

    def release(self, key_id: str, job_id: str) -> None:
        """Give back the slot of a job that was refused (its body never became a job)."""
        self._store.redis.zrem(self._key(key_id), job_id)

    def _key(self, key_id: str) -> str:
        return self._store.store_keys.key_jobs(key_id)

    def _forget_finished(self, members_key: str) -> None:
        redis = self._store.redis
        members = cast(list[tuple[bytes, float]], redis.zrange(members_key, 0, -1, withscores=True))
        if not members:
            return
        pipe = redis.pipeline(transaction=False)
        for job_id, _ in members:
            pipe.hget(self._store.keys(job_id.decode()).meta, "state")
        states = pipe.execute()
        now = time.time()
        gone = [
            job_id
            for (job_id, admitted_at), state in zip(members, states, strict=True)
            if (state is None and now - admitted_at > self.grace_s)
            or (state is not None and JobState(state.decode()).terminal)
        ]
        if gone:
            redis.zrem(members_key, *gone)
