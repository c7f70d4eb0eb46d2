"""The job store: jobs, their rows and their results in Redis, every key with a TTL.

The producer writes a job's rows chunk by chunk and seals it; workers load a chunk's rows,
store its results and count it done exactly once (a Lua script decides); readers stream the
results back in input order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from redis import Redis
from redis.typing import EncodableT, FieldT

from claimpay.clock import utc_now_iso
from claimpay.envelope import CREATED, UPDATED, Outcome
from claimpay.jobs import JobMeta, JobState
from claimpay.keys import JobKeys

# KEYS: meta, done, results, rows. ARGV: chunk_no, results, processed, created, updated,
# failed, finished_at, ttl. Returns 0 when the chunk was already counted, 1 when counted,
# 2 when it was the job's last chunk and completed the job.
_RECORD_CHUNK = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  redis.call('DEL', KEYS[4])
  return 0
end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('DEL', KEYS[4])
redis.call('HINCRBY', KEYS[1], 'processed', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'created', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'updated', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[6])
if redis.call('SCARD', KEYS[2]) >= tonumber(redis.call('HGET', KEYS[1], 'chunks')) then
  redis.call('HSET', KEYS[1], 'state', 'completed', 'finishedAt', ARGV[7])
  return 2
end
return 1
"""

# KEYS: meta. ARGV: started_at. Moves a queued job to running, once.
_START = """
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'startedAt', ARGV[1])
end
return 1
"""


class JobStore:
    """Jobs in Redis under one key prefix; see `claimpay.keys.JobKeys` for the layout."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._record = redis.register_script(_RECORD_CHUNK)
        self._start = redis.register_script(_START)

    def keys(self, job_id: str) -> JobKeys:
        return JobKeys(self.prefix, job_id)

    # -- intake (producer) ------------------------------------------------------------

    def begin(self, job_id: str, *, entity: str, database: str, user: str, chunk_size: int) -> None:
        """Create the job in state `receiving`; it is invisible to workers until sealed."""
        keys = self.keys(job_id)
        fields: dict[FieldT, EncodableT] = {
            "state": JobState.RECEIVING.value,
            "entity": entity,
            "database": database,
            "user": user,
            "chunkSize": chunk_size,
            "total": 0,
            "chunks": 0,
            "submittedAt": utc_now_iso(),
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.meta, mapping=fields)
        pipe.expire(keys.meta, self.ttl_s)
        pipe.execute()

    def write_rows(
        self, job_id: str, rows: Mapping[int, list[bytes]], moved: Mapping[int, int]
    ) -> None:
        """Append encoded `[index, row]` items to their chunks, in one round trip."""
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        for chunk_no, items in rows.items():
            if items:
                pipe.rpush(keys.rows(chunk_no), *items)
                pipe.expire(keys.rows(chunk_no), self.ttl_s)
        if moved:
            pipe.hset(keys.moved, mapping={str(i): c for i, c in moved.items()})
            pipe.expire(keys.moved, self.ttl_s)
        pipe.execute()

    def seal(self, job_id: str, *, total: int, chunks: int) -> JobMeta:
        """Mark the job stored and `queued` (or `completed` if it has no rows)."""
        keys = self.keys(job_id)
        fields: dict[FieldT, EncodableT] = {
            "state": JobState.QUEUED.value,
            "total": total,
            "chunks": chunks,
        }
        if chunks == 0:
            fields.update({"state": JobState.COMPLETED.value, "finishedAt": utc_now_iso()})
        self.redis.hset(keys.meta, mapping=fields)
        meta = self.meta(job_id)
        assert meta is not None
        return meta

    def discard(self, job_id: str, chunks: Iterable[int]) -> None:
        """Remove a job that was never sealed (a broken or refused request body)."""
        keys = self.keys(job_id)
        self.redis.delete(*keys.all_static(), *(keys.rows(n) for n in chunks))

    # -- processing (worker) ----------------------------------------------------------

    def meta(self, job_id: str) -> JobMeta | None:
        raw = self.redis.hgetall(self.keys(job_id).meta)
        if not raw:
            return None
        return JobMeta.from_hash(job_id, {_text(k): _text(v) for k, v in raw.items()})

    def mark_started(self, job_id: str) -> None:
        self._start(keys=[self.keys(job_id).meta], args=[utc_now_iso()])

    def is_chunk_done(self, job_id: str, chunk_no: int) -> bool:
        return bool(self.redis.sismember(self.keys(job_id).done, str(chunk_no)))

    def load_rows(self, job_id: str, chunk_no: int) -> list[tuple[int, Any]]:
        """The chunk's `(input index, raw row)` pairs, in input order."""
        items = self.redis.lrange(self.keys(job_id).rows(chunk_no), 0, -1)
        return [(pair[0], pair[1]) for pair in map(orjson.loads, items)]

    def record_chunk(self, job_id: str, chunk_no: int, outcomes: list[Outcome]) -> bool:
        """Store a chunk's results and count it once; True when this completed the job."""
        created = sum(1 for o in outcomes if o[1] == CREATED)
        updated = sum(1 for o in outcomes if o[1] == UPDATED)
        keys = self.keys(job_id)
        result = self._record(
            keys=[keys.meta, keys.done, keys.results(chunk_no), keys.rows(chunk_no)],
            args=[
                chunk_no,
                orjson.dumps(outcomes),
                len(outcomes),
                created,
                updated,
                len(outcomes) - created - updated,
                utc_now_iso(),
                self.ttl_s,
            ],
        )
        return int(result) == 2

    # -- reading ----------------------------------------------------------------------

    def iter_outcomes(
        self, meta: JobMeta, start: int = 0, stop: int | None = None
    ) -> Iterator[Any]:
        """Stored results of input rows `start..stop-1`, in input order, a chunk at a time."""
        stop = meta.total if stop is None else min(stop, meta.total)
        keys = self.keys(meta.job_id)
        size = meta.chunk_size
        has_moved = bool(self.redis.exists(keys.moved))
        loaded: set[int] = set()
        pending: dict[int, Any] = {}
        block_start = start
        while block_start < stop:
            home = block_start // size
            block_stop = min(stop, (home + 1) * size)
            sources = {home}
            if has_moved:
                moved = self.redis.hmget(
                    keys.moved, [str(i) for i in range(block_start, block_stop)]
                )
                sources.update(int(c) for c in moved if c is not None)
            for chunk_no in sorted(sources - loaded):
                blob = self.redis.get(keys.results(chunk_no))
                for item in orjson.loads(blob) if blob else ():
                    pending[item[0]] = item
                loaded.add(chunk_no)
            for index in range(block_start, block_stop):
                try:
                    yield pending.pop(index)
                except KeyError:
                    raise LookupError(f"job {meta.job_id}: no result for row {index}") from None
            block_start = block_stop


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
