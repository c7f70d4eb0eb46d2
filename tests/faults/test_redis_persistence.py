"""Readiness in production warns (and still answers ready) when Redis persists nothing."""

from __future__ import annotations

import pytest
from redis import Redis

from producer.readiness import NO_PERSISTENCE, Readiness, persistence_warning
from tests.factories import make_settings
from tests.faults.redis_server import RedisServer

pytestmark = pytest.mark.redis

STRONG = "Zq3v9Lr2Tx8Wm4Pk7Nd1Hs6Bf0Gj5Yc2Ue8Ra"


def test_a_redis_without_aof_or_snapshots_is_named(redis_server: RedisServer) -> None:
    redis = Redis.from_url(redis_server.url)
    try:
        assert persistence_warning(redis) is None  # AOF on
        redis.config_set("appendonly", "no")
        assert persistence_warning(redis) == NO_PERSISTENCE
        redis.config_set("save", "3600 1")
        assert persistence_warning(redis) is None  # snapshots are persistence too
    finally:
        redis.close()


def test_only_production_readiness_warns_and_it_stays_ready(redis_server: RedisServer) -> None:
    redis = Redis.from_url(redis_server.url)
    redis.config_set("appendonly", "no")
    try:
        for env, warned in (("dev", None), ("prod", NO_PERSISTENCE)):
            settings = make_settings(env=env, jwt_secret=STRONG, databases={})
            readiness = Readiness(settings, redis.ping, lambda: persistence_warning(redis))
            [check] = readiness.check()
            assert (check.name, check.ok, check.warning) == ("redis", True, warned)
    finally:
        redis.close()


class NoConfig:
    """A managed Redis that disabled CONFIG."""

    def config_get(self, _name: str) -> dict[str, str]:
        from redis.exceptions import ResponseError

        raise ResponseError("unknown command 'CONFIG'")


def test_a_redis_that_hides_its_config_is_not_blamed() -> None:
    assert persistence_warning(NoConfig()) is None  # type: ignore[arg-type]
