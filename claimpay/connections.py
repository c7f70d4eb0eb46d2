"""Redis connections and the job store, built on demand (never at import time)."""

from __future__ import annotations

from redis import Redis

from claimpay.jobstore import JobStore
from claimpay.settings import Settings


def make_redis(url: str) -> Redis:
    """A Redis client with health checks; it connects on first command."""
    return Redis.from_url(url, health_check_interval=30, socket_keepalive=True)


def make_job_store(settings: Settings, redis: Redis | None = None) -> JobStore:
    """The job store for these settings, on `redis` or a new client."""
    client = redis if redis is not None else make_redis(settings.require_redis_url())
    return JobStore(client, prefix=settings.key_prefix, ttl_s=settings.result_ttl_s)
