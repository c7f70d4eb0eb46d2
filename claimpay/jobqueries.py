"""What only the producer asks of the job store: the jobs of a database (`GET /jobs`),
each API key's unfinished jobs, and the rerun of a finished job's failed rows
(`POST /jobs/{id}/retry`). `JobStore` inherits them: its Redis stays behind it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from redis import Redis
from redis.commands.core import Script
from redis.typing import EncodableT, FieldT

from claimpay.jobs import JobMeta, JobState
from claimpay.keys import JobKeys, StoreKeys


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """A job in its database's index (`StoreKeys.jobs_of`), scored by submission time."""

    submitted_ts: float
    job_id: str
    database: str


PIPELINE_BATCH = 1_000
"""Commands per pipeline when reading many jobs at once."""


class ProducerQueries:
    """The producer's part of `JobStore` (which sets the attributes below)."""

    redis: Redis
    store_keys: StoreKeys
    ttl_s: int
    _admit: Script
    """`lua.ADMIT_JOB`, registered on `redis`."""

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
        pipe.execute()

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

    # -- the jobs of a database (producer: `GET /jobs`) ---------------------------------

    def indexed_jobs(self, databases: Sequence[str], now: float) -> list[IndexEntry]:
        """The index entries of `databases`' jobs, newest first; entries older than the
        TTL are dropped from the index first."""
        pipe = self.redis.pipeline(transaction=False)
        for database in databases:
            index = self.store_keys.jobs_of(database)
            pipe.zremrangebyscore(index, "-inf", f"({now - self.ttl_s}")
            pipe.zrange(index, 0, -1, withscores=True)
        replies = pipe.execute()
        entries = [
            IndexEntry(score, text(member), database)
            for database, members in zip(databases, replies[1::2], strict=True)
            for member, score in cast(list[tuple[bytes, float]], members)
        ]
        entries.sort(key=lambda entry: (entry.submitted_ts, entry.job_id), reverse=True)
        return entries

    def states(self, job_ids: Sequence[str]) -> list[str | None]:
        """The state of each job (None: the job is gone), a pipeline per `PIPELINE_BATCH`."""
        states: list[str | None] = []
        for start in range(0, len(job_ids), PIPELINE_BATCH):
            pipe = self.redis.pipeline(transaction=False)
            for job_id in job_ids[start : start + PIPELINE_BATCH]:
                pipe.hget(self.keys(job_id).meta, "state")
            states.extend(text(found) if found else None for found in pipe.execute())
        return states

    def metas(self, job_ids: Sequence[str]) -> list[JobMeta]:
        """The summaries of the jobs that still exist, in the order given."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys(job_id).meta)
        found = []
        for job_id, raw in zip(job_ids, pipe.execute(), strict=True):
            if raw:
                decoded = {text(key): text(value) for key, value in raw.items()}
                found.append(JobMeta.from_hash(job_id, decoded))
        return found

    def unindex(self, entries: Iterable[IndexEntry]) -> None:
        """Drop these entries from their databases' indexes."""
        pipe = self.redis.pipeline(transaction=False)
        for entry in entries:
            pipe.zrem(self.store_keys.jobs_of(entry.database), entry.job_id)
        pipe.execute()


def text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value
