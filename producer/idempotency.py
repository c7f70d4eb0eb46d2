"""`Idempotency-Key`: the same key and body within the retention window return the
original job instead of creating another.

The record is claimed before the body is read (so a concurrent duplicate is seen at once),
completed with the body's SHA-256 once the job is sealed, and released if the request
fails, so that the client may try again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import cast

from redis import Redis

from claimpay.keys import StoreKeys

RECEIVING = "receiving"
SEALED = "sealed"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The job a key created, and the hash of its body once it was stored."""

    job_id: str
    state: str
    body_sha256: str


class IdempotencyKeys:
    """Idempotency records in Redis, scoped by API key and database."""

    def __init__(self, redis: Redis, keys: StoreKeys, ttl_s: int, claim_ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_s = ttl_s
        self._claim_ttl_s = claim_ttl_s
        """A claim lapses this long after the receiving API last showed life (it may have
        died)."""

    def key(self, caller_key_id: str, database: str, idempotency_key: str) -> str:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
        return self._keys.idempotency(f"{caller_key_id}:{database}:{digest}")

    def claim(self, record_key: str, job_id: str) -> IdempotencyRecord | None:
        """Take the key for `job_id`; the existing record if another request took it."""
        if self._redis.hsetnx(record_key, "jobId", job_id):
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(record_key, "state", RECEIVING)
            pipe.expire(record_key, self._claim_ttl_s)
            pipe.execute()
            return None
        raw = cast(dict[bytes, bytes], self._redis.hgetall(record_key))
        return IdempotencyRecord(
            job_id=raw.get(b"jobId", b"").decode(),
            state=raw.get(b"state", RECEIVING.encode()).decode(),
            body_sha256=raw.get(b"bodySha256", b"").decode(),
        )

    def refresh(self, record_key: str) -> None:
        """The body is still arriving: keep the claim."""
        self._redis.expire(record_key, self._claim_ttl_s)

    def complete(self, record_key: str, body_sha256: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(record_key, mapping={"state": SEALED, "bodySha256": body_sha256})
        pipe.expire(record_key, self._ttl_s)
        pipe.execute()

    def release(self, record_key: str) -> None:
        self._redis.delete(record_key)
