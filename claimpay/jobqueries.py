"""What only the producer asks of the job store: the jobs of a database (`GET /jobs`),
each API key's unfinished jobs, and the rerun of a finished job's failed rows
(`POST /jobs/{id}/retry`). `JobStore` inherits them: its Redis stays behind it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.typing import EncodableT, FieldT

from claimpay.jobs import JobMeta, JobState
from claimpay.keys import JobKeys, StoreKeys


@dataclass(frozen=True, slots=True)
class IndexedPage:
    """One page of jobs read from listing indexes, and the number of entries in them."""

    jobs: list[JobMeta]
    total: int


class ProducerQueries:
    """The producer's part of `JobStore` (which sets the attributes below)."""

    redis: Redis
    store_keys: StoreKeys
    ttl_s: int
    _admit: Script
    """`lua.ADMIT_JOB`, registered on `redis`."""
    _list_page: Script
    """`lua.LIST_PAGE`, registered on `redis`."""

    def keys(self, job_id: str) -> JobKeys:
        return self.store_keys.job(job_id)

    def now(self) -> float:
        """Redis's clock (`TIME`), in Unix seconds: the one clock that every host's
        timestamps in the job store are written with and compared against."""
        seconds, micros = self.redis.time()
        return seconds + micros / 1_000_000

    # -- reruns of failed rows (producer: `POST /jobs/{id}/retry`) -----------------------

    def lock_rerun(self, job_id: str, ttl_s: int) -> bool:
        """Take the job's rerun lock for at most `ttl_s`; False while another holds it."""
        return bool(self.redis.set(self.keys(job_id).rerun_lock, "1", nx=True, ex=ttl_s))

    def unlock_rerun(self, job_id: str) -> None:
        self.redis.delete(self.keys(job_id).rerun_lock)

    def chunk_nos(self, job_id: str) -> list[int]:
        """The numbers of the job's chunks, ascending."""
        return sorted(int(c) for c in self.redis.smembers(self.keys(job_id).chunks))

    def attempts(self, job_id: str, indexes: Sequence[int]) -> dict[int, list[Any]]:
        """`history` of these input rows only (those that have one)."""
        if not indexes:
            return {}
        found = self.redis.hmget(self.keys(job_id).history, [str(i) for i in indexes])
        return {i: orjson.loads(blob) for i, blob in zip(indexes, found, strict=True) if blob}

    def start_rerun(
        self,
        meta: JobMeta,
        rows: Mapping[int, Sequence[int]],
        history: Mapping[int, list[Any]],
        uncounted: Mapping[str, int],
    ) -> None:
        """Queue the job's next round, in one transaction: `rows` (input indexes by chunk)
        are applied again, `history` (by input index) becomes the rows' earlier attempts,
        and the job's counters lose what `uncounted` says those rows had added."""
        keys = self.keys(meta.job_id)
        every_chunk = self.chunk_nos(meta.job_id)
        pipe = self.redis.pipeline(transaction=True)
        for chunk_no, indexes in rows.items():
            # The chunk keeps all its rows (others may be rerun later); the round applies these.
            pipe.delete(keys.rerun_rows(chunk_no))
            pipe.sadd(keys.rerun_rows(chunk_no), *indexes)
            pipe.expire(keys.rerun_rows(chunk_no), self.ttl_s)
            pipe.srem(keys.done, chunk_no)
            pipe.hdel(keys.deliveries, str(chunk_no))
        encoded = {str(index): orjson.dumps(attempts) for index, attempts in history.items()}
        pipe.hset(keys.history, mapping=encoded)  # type: ignore[arg-type]
        pipe.expire(keys.history, self.ttl_s)
        for counter, amount in uncounted.items():
            pipe.hincrby(keys.meta, counter, -amount)
        now = self.now()  # Redis's clock: recovery compares it with other hosts' stamps
        fields: dict[FieldT, EncodableT] = {
            "state": JobState.QUEUED.value,
            "round": meta.round + 1,
            "progressTs": now,
        }
        pipe.hset(keys.meta, mapping=fields)
        pipe.hdel(keys.meta, "finishedAt", "cancel")
        # The round may start near the end of the job's TTL: give the whole job a new one.
        for key in (keys.meta, keys.chunks, keys.done, keys.moved, keys.deliveries):
            pipe.expire(key, self.ttl_s)
        for chunk_no in every_chunk:
            pipe.expire(keys.results(chunk_no), self.ttl_s)
            pipe.expire(keys.rows(chunk_no), self.ttl_s)
        pipe.zadd(self.store_keys.active, {meta.job_id: now})
        self.relist(pipe, meta, JobState.QUEUED)
        pipe.execute()

    def relist(self, pipe: Pipeline, meta: JobMeta, state: JobState) -> None:
        """In `pipe`: move the job from its listing index of `meta.state` to `state`'s
        (what the Lua scripts do when they change a job's state; see `lua.RESTATE`)."""
        if meta.submitted_ts is None:
            return
        index = self.store_keys.jobs_in_state(meta.database, state.value)
        pipe.zrem(self.store_keys.jobs_in_state(meta.database, meta.state.value), meta.job_id)
        pipe.zadd(index, {meta.job_id: meta.submitted_ts})
        pipe.expire(index, self.ttl_s)

    # -- unfinished jobs per API key (producer) -----------------------------------------

    def admit_job(self, key_id: str, job_id: str, limit: int, grace_s: float) -> bool:
        """Count `job_id` against `key_id` unless the key has `limit` unfinished jobs;
        False (and not counted) then. A job counted whose hash is missing for longer than
        `grace_s` is gone (its body was refused), and no longer counts."""
        members = self.store_keys.key_jobs(key_id)
        self._forget_finished(members, grace_s)
        admitted = self._admit(keys=[members], args=[job_id, time.time(), limit, self.ttl_s])
        return bool(admitted)

    def release_job(self, key_id: str, job_id: str) -> None:
        """Stop counting a job that was refused (its body never became a job)."""
        self.redis.zrem(self.store_keys.key_jobs(key_id), job_id)

    def _forget_finished(self, members_key: str, grace_s: float) -> None:
        redis = self.redis
        members = cast(list[tuple[bytes, float]], redis.zrange(members_key, 0, -1, withscores=True))
        if not members:
            return
        pipe = redis.pipeline(transaction=False)
        for job_id, _ in members:
            pipe.hget(self.keys(job_id.decode()).meta, "state")
        states = pipe.execute()
        now = time.time()
        gone = [
            job_id
            for (job_id, admitted_at), state in zip(members, states, strict=True)
            if (state is None and now - admitted_at > grace_s)
            or (state is not None and JobState(state.decode()).terminal)
        ]
        if gone:
            redis.zrem(members_key, *gone)

    # -- failed logins per user name (producer: `POST /user-authentication`) ------------

    def login_failures(self, name_digest: str) -> tuple[int, int]:
        """The failed logins counted for a user name (by its digest), and the milliseconds
        until the count expires (<= 0: it does not)."""
        key = self.store_keys.login_failures(name_digest)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        count, pttl = pipe.execute()
        return (0 if count is None else int(count)), int(pttl)

    def count_login_failure(self, name_digest: str, ttl_s: int) -> None:
        """One more failed login for the name; its count expires `ttl_s` after this one."""
        key = self.store_keys.login_failures(name_digest)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl_s)
        pipe.execute()

    def clear_login_failures(self, name_digest: str) -> None:
        self.redis.delete(self.store_keys.login_failures(name_digest))

    # -- the jobs of a database (producer: `GET /jobs`) ---------------------------------

    def job_page(
        self,
        databases: Sequence[str],
        state: JobState | None,
        start: int,
        count: int,
        now: float | None = None,
    ) -> IndexedPage:
        """Entries `[start, start + count)` of the listing indexes of `databases` (of
        `state` only, unless None), merged newest first, and the jobs they name: one
        `lua.LIST_PAGE` call (which trims entries older than the TTL; `now` None: Redis's
        clock) and one pipeline of the page's jobs. Entries whose job is gone are dropped
        from the indexes; jobs indexed while receiving (by an older version) are skipped."""
        if not databases:
            return IndexedPage([], 0)
        indexes = [
            self.store_keys.jobs_of(name)
            if state is None
            else self.store_keys.jobs_in_state(name, state.value)
            for name in databases
        ]
        args = [start, count, self.ttl_s, "" if now is None else now]
        reply = self._list_page(keys=indexes, args=args)
        total, members = int(reply[0]), [text(member) for member in reply[1::2]]
        pipe = self.redis.pipeline(transaction=False)
        for job_id in members:
            pipe.hgetall(self.keys(job_id).meta)
        jobs, stale = [], []
        for job_id, raw in zip(members, pipe.execute(), strict=True):
            decoded = {text(key): text(value) for key, value in raw.items()}
            if not decoded:
                stale.append(job_id)  # expired on its own, just before its index entry
            elif decoded["state"] != JobState.RECEIVING.value:
                jobs.append(JobMeta.from_hash(job_id, decoded))
        if stale:
            for index in indexes:
                pipe.zrem(index, *stale)
            pipe.execute()
        return IndexedPage(jobs, total - len(stale))


def text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value
