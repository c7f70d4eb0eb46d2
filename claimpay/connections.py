"""Redis connections and the job store, built on demand (never at import time)."""

from __future__ import annotations

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

from claimpay.jobstore import JobStore
from claimpay.settings import Settings

REDIS_RETRIES = 12
"""Retries of a command on a lost connection: about 10 s, enough to ride out a restart."""


SOCKET_TIMEOUT_S = 30
"""No job-store command blocks: one that hangs this long is a dead connection."""


def make_redis(url: str) -> Redis:
    """A Redis client with health checks and retries; it connects on first command."""
    return Redis.from_url(
        url,
        health_check_interval=30,
        socket_keepalive=True,
        socket_timeout=SOCKET_TIMEOUT_S,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), REDIS_RETRIES),
        retry_on_error=[ConnectionError, TimeoutError],
    )


def make_job_store(settings: Settings, redis: Redis | None = None) -> JobStore:
    """The job store for these settings, on `redis` or a new client."""
    client = redis if redis is not None else make_redis(settings.require_redis_url())
    return JobStore(client, prefix=settings.key_prefix, ttl_s=settings.result_ttl_s)
