"""The backlog, read from Redis at scrape time: queue depths and how long work has waited.

"Oldest waiting chunk age" is measured on the job store, not on broker messages: for each
queue, the age (since the job was sealed) of the oldest unfinished job that still has a
chunk no worker holds. It also sees chunks whose messages were lost, which the broker
cannot show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from redis import Redis

from claimpay.keys import StoreKeys

SCAN_BATCH = 50
SCAN_LIMIT = 2_000
"""Unfinished jobs looked at per scrape, oldest first; older ones decide the age anyway."""
_WAITING_STATES = ("queued", "running")


@dataclass(frozen=True, slots=True)
class Backlog:
    """What is waiting, per queue."""

    depth: dict[str, int]
    """Messages in each broker queue."""
    oldest_wait_s: dict[str, float]
    """Per queue, seconds the oldest job with a waiting chunk has been queued (0: none)."""
    active_jobs: int
    """Jobs sealed and not finished."""


def read_backlog(
    redis: Redis,
    keys: StoreKeys,
    queues: Sequence[str],
    now: float | None = None,
) -> Backlog:
    """The backlog of the deployment, for the broker `queues` (the first is the default).
    Ages are measured on Redis's clock (`now`, default its `TIME`), as the stamps are."""
    if now is None:
        seconds, micros = redis.time()
        now = seconds + micros / 1_000_000
    pipe = redis.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
    pipe.zcard(keys.active)
    *depths, active = pipe.execute()
    oldest = _oldest_waiting(redis, keys, queues, now)
    return Backlog(
        depth={queue: int(depth) for queue, depth in zip(queues, depths, strict=True)},
        oldest_wait_s={queue: oldest.get(queue, 0.0) for queue in queues},
        active_jobs=int(active),
    )


def _oldest_waiting(
    redis: Redis, keys: StoreKeys, queues: Sequence[str], now: float
) -> dict[str, float]:
    found: dict[str, float] = {}
    for start in range(0, SCAN_LIMIT, SCAN_BATCH):
        batch = cast(
            list[tuple[bytes, float]],
            redis.zrange(keys.active, start, start + SCAN_BATCH - 1, withscores=True),
        )
        if not batch:
            break
        pipe = redis.pipeline(transaction=False)
        for member, _ in batch:
            job = keys.job(member.decode())
            pipe.hmget(job.meta, ["state", "queue"])
            pipe.scard(job.chunks)
            pipe.scard(job.done)
            pipe.scard(job.started)
        replies = pipe.execute()
        for index, (_, sealed_ts) in enumerate(batch):
            (state, queue), chunks, done, started = replies[4 * index : 4 * index + 4]
            name = queue.decode() if queue else queues[0]
            waiting = chunks - done - started > 0
            if state and state.decode() in _WAITING_STATES and waiting and name not in found:
                found[name] = max(0.0, now - sealed_ts)
        if all(queue in found for queue in queues):
            break
    return found
