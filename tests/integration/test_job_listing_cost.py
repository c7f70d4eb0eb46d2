"""Issue 12, finding 3: a page of `GET /jobs` costs O(page size), whatever the number of
jobs: on the real Redis, the same commands and the same job records are read with 50,000
jobs per database as with 100, and merged pages are exact."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from claimpay.jobs import JobState
from claimpay.jobstore import JobStore
from producer.joblist import list_jobs
from tests.unit.producer.test_listing_index import assert_pages_merged_across_databases_are_exact

pytestmark = [pytest.mark.redis]

TTL_S = 7 * 24 * 3600


class CountingRedis(Redis):
    """A Redis client that records the name of every command it sends, pipelines included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute, sent = pipe.execute, self.sent

        def counted(raise_on_error: bool = True) -> Any:
            sent.extend(str(args[0]).upper() for args, _ in pipe.command_stack)
            return execute(raise_on_error)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe


@pytest.fixture
def counting_store(redis_url: str) -> Iterator[JobStore]:
    """A job store under a key prefix of its own on the real Redis, deleted afterwards."""
    prefix = f"cplist{secrets.token_hex(4)}"
    redis = CountingRedis.from_url(redis_url)
    yield JobStore(redis, prefix=prefix, ttl_s=TTL_S)
    found = list(redis.scan_iter(match=f"{prefix}:*", count=10_000))
    for start in range(0, len(found), 10_000):
        redis.delete(*found[start : start + 10_000])
    redis.close()


def populate(store: JobStore, database: str, count: int, now: float) -> None:
    """`count` completed jobs of `database`, one a second back from `now`, stored and
    indexed as `JobStore.seal` and the Lua scripts store them (in bulk: fast)."""
    keys = store.store_keys
    scores = {f"{database}-{n:08d}": now - n for n in range(count)}
    pipe = store.redis.pipeline(transaction=False)
    for job_id, score in scores.items():
        pipe.hset(
            store.keys(job_id).meta,
            mapping={
                "state": "completed",
                "entity": "claim-prompt-pays",
                "database": database,
                "chunkSize": 10,
                "submittedAt": "2026-12-07T00:00:00Z",
                "submittedTs": score,
                "listIndex": keys.jobs_of(database),
            },
        )
        pipe.expire(store.keys(job_id).meta, TTL_S)
    pipe.execute()
    for index in (keys.jobs_of(database), keys.jobs_in_state(database, "completed")):
        store.redis.zadd(index, scores)


QUERIES: list[tuple[int, int, JobState | None]] = [  # page, page size, state
    (1, 1, None),
    (3, 20, None),
    (30, 3, JobState.COMPLETED),
]


def commands_of_pages(store: JobStore, databases: list[str]) -> list[tuple[list[str], list[str]]]:
    """For each query: the commands its page sent, and the IDs of the jobs it shows."""
    assert isinstance(store.redis, CountingRedis)
    now = time.time()
    list_jobs(store, databases, now=now)  # loads the script into Redis once
    seen = []
    for number, size, state in QUERIES:
        store.redis.sent.clear()
        page = list_jobs(store, databases, state=state, page=number, page_size=size, now=now)
        seen.append((list(store.redis.sent), [meta.job_id for meta in page.jobs]))
    return seen


@pytest.mark.parametrize("databases", [["acme"], ["acme", "demo"]])
def test_a_page_costs_the_same_with_50000_jobs_as_with_100(
    counting_store: JobStore, databases: list[str]
) -> None:
    now = time.time()
    for database in databases:
        populate(counting_store, database, 100, now)
    few = commands_of_pages(counting_store, databases)
    for database in databases:
        populate(counting_store, database, 50_000, now)  # 49,900 older jobs more
    many = commands_of_pages(counting_store, databases)
    for (_, size, _), (sent, shown), (sent_many, shown_many) in zip(
        QUERIES, few, many, strict=True
    ):
        # One script call (trim, count, pick the page), then one record per job shown.
        assert sent == sent_many == ["EVALSHA"] + ["HGETALL"] * size
        assert shown == shown_many  # the newest jobs, the same in both


def test_pages_merged_across_databases_are_exact_on_redis(counting_store: JobStore) -> None:
    assert_pages_merged_across_databases_are_exact(counting_store)
