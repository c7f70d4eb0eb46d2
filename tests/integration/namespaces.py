"""Each test deployment lives under its own Redis key prefix and queue; this removes it."""

from __future__ import annotations

from collections.abc import Mapping

from redis import Redis


def purge_namespace(env: Mapping[str, str]) -> None:
    """Delete every Redis key of a deployment: its job store and its Celery queues."""
    redis = Redis.from_url(env["CLAIMPAY_REDIS_URL"])
    try:
        for name in (env["CLAIMPAY_KEY_PREFIX"], env["CLAIMPAY_QUEUE"]):
            for pattern in (f"{name}*", f"_kombu.binding.{name}*"):
                found = list(redis.scan_iter(match=pattern, count=1000))
                if found:
                    redis.delete(*found)
    finally:
        redis.close()
