"""The job store: jobs, their rows and their results in Redis, every key with a TTL.

The producer writes a job's rows chunk by chunk and seals it; a worker claims a chunk under
a lease, loads its rows, stores its results and counts it done exactly once (Lua scripts in
`claimpay.lua` decide); readers stream the results back in input order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import orjson
from redis import Redis
from redis.typing import EncodableT, FieldT

from claimpay import jobids, lua, stats
from claimpay.clock import utc_now_iso
from claimpay.envelope import (
    Outcome,
    RowStatus,
    decode_outcomes,
    encode_outcomes,
    is_success,
)
from claimpay.jobqueries import ProducerQueries, text
from claimpay.jobs import JobMeta, JobState
from claimpay.keys import StoreKeys

MISSING_RESULT = "No result was recorded for this row"
DURATION_BOUNDS = [stats.bound_label(bound) for bound in stats.JOB_DURATION_BUCKETS_S]
"""The job duration histogram's bounds, handed to `lua.RECORD_CHUNK` as it is called."""
RETRY_HOLDER = "retry"
"""Lease value while a chunk's retry waits; the retry's own claim may take it over."""


class Claim(StrEnum):
    """What a worker may do with a chunk it received (see `lua.CLAIM_CHUNK`)."""

    RUN = "run"
    DONE = "done"
    BUSY = "busy"
    CANCELLED = "cancelled"
    POISON = "poison"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class ChunkStates:
    """A job's chunks as recovery sees them."""

    unfinished: set[int]
    """Not recorded yet."""
    claimed: set[int]
    """Claimed by a worker and not recorded."""
    leased: set[int]
    """Held under a live lease: a worker is on it, or its task's retry is waiting."""
    waiting: set[int]
    """Not queued yet: waiting for a chunk of the job to be recorded (`job_window_chunks`)."""


_EVERY = 2**31 - 1
"""A count that takes a whole list (`LPOP key count`)."""


class JobStore(ProducerQueries):
    """Jobs in Redis under one key prefix; see `claimpay.keys` for the layout (and
    `claimpay.jobqueries` for what only the producer asks of it)."""

    def __init__(self, redis: Redis, prefix: str, ttl_s: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.store_keys = StoreKeys(prefix)
        self._claim = redis.register_script(lua.CLAIM_CHUNK)
        self._renew = redis.register_script(lua.RENEW_LEASE)
        self._record = redis.register_script(lua.RECORD_CHUNK)
        self._cancel = redis.register_script(lua.CANCEL_JOB)
        self._hold = redis.register_script(lua.HOLD_FOR_RETRY)
        self._mark_stalled = redis.register_script(lua.MARK_STALLED)
        self._stalled = redis.register_script(lua.STALLED)
        self._admit = redis.register_script(lua.ADMIT_JOB)
        self._schedule_webhook = redis.register_script(lua.SCHEDULE_WEBHOOK)
        self._claim_webhooks = redis.register_script(lua.CLAIM_WEBHOOKS)
        self._settle_webhook = redis.register_script(lua.SETTLE_WEBHOOK)
        self._list_page = redis.register_script(lua.LIST_PAGE)

    def epoch(self) -> str:
        """This store's epoch (made on first use; see `claimpay.jobids`)."""
        key = self.store_keys.epoch
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(key, jobids.new_epoch(), nx=True)
        pipe.get(key)
        return text(cast(bytes, pipe.execute()[-1]))

    def new_job_id(self) -> str:
        """A new job ID carrying this store's epoch."""
        return jobids.new_job_id(self.epoch(), self.prefix)

    def lost(self, job_id: str) -> bool:
        """True when `job_id` (unknown here) was issued by this store before it was reset:
        an issued ID of another epoch (or of any epoch, once the store holds none)."""
        if not jobids.is_issued(job_id, self.prefix):
            return False
        current = self.redis.get(self.store_keys.epoch)
        return current is None or text(current) != jobids.epoch_of(job_id)

    # -- intake (producer) ------------------------------------------------------------

    def begin(
        self,
        job_id: str,
        *,
        entity: str,
        database: str,
        user: str,
        chunk_size: int,
        dry_run: bool = False,
        callback_url: str | None = None,
    ) -> None:
        """Create the job in state `receiving`; it is invisible to workers until sealed."""
        keys = self.keys(job_id)
        now = self.now()
        fields: dict[FieldT, EncodableT] = {
            "state": JobState.RECEIVING.value,
            "entity": entity,
            "database": database,
            "user": user,
            "chunkSize": chunk_size,
            "total": 0,
            "chunks": 0,
            "submittedAt": utc_now_iso(),
            "submittedTs": now,
            "listIndex": self.store_keys.jobs_of(database),
            "progressTs": now,
            "dryRun": int(dry_run),
        }
        if callback_url:
            fields["callbackUrl"] = callback_url
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.meta, mapping=fields)
        pipe.expire(keys.meta, self.ttl_s)
        pipe.execute()

    def write_rows(
        self, job_id: str, rows: Mapping[int, list[bytes]], moved: Mapping[int, int]
    ) -> None:
        """Append encoded `[index, row]` items to their chunks, in one round trip; each
        chunk's items of a call go into one list element (`[[index, row], ...]`), which
        spares Redis and both sides a per-row round of encoding and parsing."""
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        for chunk_no, items in rows.items():
            if items:
                pipe.rpush(keys.rows(chunk_no), b"[" + b",".join(items) + b"]")
                pipe.expire(keys.rows(chunk_no), self.ttl_s)
        if moved:
            pipe.hset(keys.moved, mapping={str(i): c for i, c in moved.items()})
            pipe.expire(keys.moved, self.ttl_s)
        pipe.execute()

    def seal(
        self,
        job_id: str,
        *,
        total: int,
        chunk_nos: list[int],
        queue: str | None = None,
        window: int = 0,
    ) -> JobMeta:
        """Mark the job stored and `queued` (or `completed` if it has no rows); `queue` is
        the Celery queue its chunks go to (recovery queues them there again). With a
        `window`, the chunks after the first `window` wait in the job store: the caller
        queues the first `window` (all of them without one), and each chunk recorded
        queues the next (`take_waiting`)."""
        keys = self.keys(job_id)
        now = self.now()
        state = JobState.QUEUED if chunk_nos else JobState.COMPLETED
        fields: dict[FieldT, EncodableT] = {
            "state": state.value,
            "total": total,
            "chunks": len(chunk_nos),
            "progressTs": now,
            "sealedTs": now,
        }
        if queue:
            fields["queue"] = queue
        if window:
            fields["window"] = window
        if not chunk_nos:
            fields["finishedAt"] = utc_now_iso()
        database, submitted_ts = self.redis.hmget(keys.meta, ["database", "submittedTs"])
        pipe = self.redis.pipeline(transaction=True)
        if database is not None and submitted_ts is not None:
            # Listed from now on (`GET /jobs`), under its database and its state.
            database = text(database)
            for index in (
                self.store_keys.jobs_of(database),
                self.store_keys.jobs_in_state(database, state.value),
            ):
                pipe.zremrangebyscore(index, "-inf", f"({now - self.ttl_s}")
                pipe.zadd(index, {job_id: float(submitted_ts)})
                pipe.expire(index, self.ttl_s)
        if chunk_nos:
            pipe.sadd(keys.chunks, *chunk_nos)
            pipe.expire(keys.chunks, self.ttl_s)
            if window and (waiting := chunk_nos[window:]):
                pipe.rpush(keys.waiting, *waiting)
                pipe.expire(keys.waiting, self.ttl_s)
            pipe.zadd(self.store_keys.active, {job_id: now})
        pipe.hset(keys.meta, mapping=fields)
        for field, amount in stats.submission_increments(total).items():
            pipe.hincrby(self.store_keys.stats, field, amount)
        pipe.hgetall(keys.meta)  # the job as sealed, read in the same transaction
        raw = pipe.execute()[-1]
        return JobMeta.from_hash(job_id, {text(k): text(v) for k, v in raw.items()})

    def discard(self, job_id: str, chunks: Iterable[int]) -> None:
        """Remove a job that was never sealed (a broken or refused request body)."""
        keys = self.keys(job_id)
        self.redis.delete(*keys.all_static(), *(keys.rows(n) for n in chunks))

    # -- processing (worker) ----------------------------------------------------------

    def meta(self, job_id: str) -> JobMeta | None:
        raw = self.redis.hgetall(self.keys(job_id).meta)
        if not raw:
            return None
        return JobMeta.from_hash(job_id, {text(k): text(v) for k, v in raw.items()})

    def claim(
        self, job_id: str, chunk_no: int, owner: str, lease_ttl_s: int, max_deliveries: int
    ) -> Claim:
        """Take the chunk under a lease if nobody has done or is doing it."""
        keys = self.keys(job_id)
        result = self._claim(
            keys=[keys.meta, keys.done, keys.started, keys.lease(chunk_no), keys.deliveries],
            args=[
                chunk_no,
                owner,
                lease_ttl_s,
                max_deliveries,
                utc_now_iso(),
                self.ttl_s,
                job_id,
            ],
        )
        return Claim(text(result))

    def renew_lease(self, job_id: str, chunk_no: int, owner: str, ttl_s: int) -> bool:
        """Keep holding the chunk; False if the lease was lost (it expired meanwhile)."""
        key = self.keys(job_id).lease(chunk_no)
        return bool(self._renew(keys=[key], args=[owner, ttl_s]))

    def hold_for_retry(self, job_id: str, chunk_no: int, ttl_s: int, owner: str = "") -> bool:
        """Keep the chunk leased while its retry waits, so recovery leaves it alone; only
        if `owner` still holds the lease or nobody does (a worker that gave up a stuck
        chunk must not take it back from the worker now on it). True when held."""
        key = self.keys(job_id).lease(chunk_no)
        return bool(self._hold(keys=[key], args=[owner or RETRY_HOLDER, max(1, int(ttl_s))]))

    def mark_stalled(self, node: str, owner: str, ttl_s: int) -> None:
        """Node `node` has a pool process (`owner`) stuck in a database call, for `ttl_s`
        seconds of Redis time unless marked again."""
        self._mark_stalled(keys=[self.store_keys.stalled(node)], args=[owner, ttl_s])

    def clear_stalled(self, node: str, owner: str) -> None:
        self.redis.zrem(self.store_keys.stalled(node), owner)

    def stalled(self, node: str) -> list[str]:
        """The claims of `node` stuck in a database call now (see `worker.heartbeat`)."""
        return [text(owner) for owner in self._stalled(keys=[self.store_keys.stalled(node)])]

    def load_rows(
        self, job_id: str, chunk_no: int, rerun_only: bool = False
    ) -> list[tuple[int, Any]]:
        """The chunk's `(input index, raw row)` pairs, in input order (in a rerun round,
        only the rows it reruns); an item that cannot be decoded is left out (the reader
        reports its row as without a result)."""
        wanted: set[int] | None = None
        if rerun_only:
            retried = self.redis.smembers(self.keys(job_id).rerun_rows(chunk_no))
            wanted = {int(i) for i in retried}
        rows = []
        for element in self.load_elements(job_id, chunk_no):
            for index, row in decode_items(element):
                if wanted is None or index in wanted:
                    rows.append((index, row))
        return rows

    def load_elements(self, job_id: str, chunk_no: int) -> list[bytes]:
        """The chunk's stored elements, in input order: each holds `[[index, row], ...]`
        (see `write_rows`; `decode_items` reads one)."""
        return cast(list[bytes], self.redis.lrange(self.keys(job_id).rows(chunk_no), 0, -1))

    def record_chunk(
        self,
        job_id: str,
        chunk_no: int,
        outcomes: Sequence[Outcome],
        merged: Sequence[Outcome] | None = None,
        job_round: int = 0,
    ) -> bool:
        """Store a chunk's results and count `outcomes` once; True when this finished the job.

        `merged` (a rerun round) is the chunk's whole result list to store, of which
        `outcomes` are the rows just applied. A chunk with any row not 2xx keeps its rows
        (until the TTL) so that `POST /jobs/{id}/retry` can apply them again.
        """
        statuses = Counter(item.status for item in outcomes)
        created = statuses[RowStatus.CREATED]
        updated = statuses[RowStatus.UPDATED]
        skipped = statuses[RowStatus.NOT_PROCESSED]
        stored = outcomes if merged is None else merged
        keys = self.keys(job_id)
        result = self._record(
            keys=[
                keys.meta,
                keys.done,
                keys.results(chunk_no),
                keys.rows(chunk_no),
                keys.lease(chunk_no),
                keys.started,
                self.store_keys.active,
                self.store_keys.stats,
                self.store_keys.ended,
            ],
            args=[
                chunk_no,
                encode_outcomes(stored),
                len(outcomes),
                created,
                updated,
                skipped,
                len(outcomes) - created - updated - skipped,
                utc_now_iso(),
                self.ttl_s,
                job_id,
                int(_any_failed(statuses if merged is None else {item.status for item in merged})),
                job_round,
                *DURATION_BOUNDS,
            ],
        )
        return int(result) == 2

    def stored_results(self, job_id: str, chunk_no: int) -> list[Outcome]:
        """The chunk's stored results (empty if none)."""
        blob = self.redis.get(self.keys(job_id).results(chunk_no))
        return decode_outcomes(cast(bytes | None, blob))

    def cancel(self, job_id: str) -> JobState | None:
        """Ask for the job to stop: chunks not started are skipped. Returns the new state."""
        keys = self.keys(job_id)
        result = self._cancel(
            keys=[
                keys.meta,
                keys.done,
                self.store_keys.active,
                self.store_keys.stats,
                self.store_keys.ended,
            ],
            args=[utc_now_iso(), job_id, self.ttl_s],
        )
        return JobState(text(result)) if result else None

    # -- recovery (worker sweep) -------------------------------------------------------

    def acquire_sweep_lock(self, ttl_s: float) -> bool:
        """True for the one caller that may sweep during the next `ttl_s` seconds."""
        return bool(self.redis.set(self.store_keys.sweep_lock, "1", nx=True, px=int(ttl_s * 1000)))

    def active_jobs(self) -> list[str]:
        """IDs of the jobs not finished yet, oldest first."""
        members = cast(list[bytes], self.redis.zrange(self.store_keys.active, 0, -1))
        return [text(job_id) for job_id in members]

    def forget_active(self, job_id: str) -> None:
        self.redis.zrem(self.store_keys.active, job_id)

    def chunk_states(self, job_id: str) -> ChunkStates:
        """Which chunks of the job are unfinished, claimed, and held under a live lease."""
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.smembers(keys.chunks)
        pipe.smembers(keys.done)
        pipe.smembers(keys.started)
        pipe.lrange(keys.waiting, 0, -1)
        every, done, started, waiting = ({int(c) for c in found} for found in pipe.execute())
        unfinished = sorted(every - done - waiting)  # a waiting chunk holds no lease
        for chunk_no in unfinished:
            pipe.exists(keys.lease(chunk_no))
        leased = {c for c, held in zip(unfinished, pipe.execute(), strict=True) if held}
        return ChunkStates(set(unfinished) | waiting, started - done, leased, waiting)

    def take_waiting(self, job_id: str, count: int | None = None) -> list[int]:
        """Take the job's first `count` chunks not queued yet (None: all of them), in
        order; whoever takes them queues them."""
        taken = self.redis.lpop(self.keys(job_id).waiting, count or _EVERY)
        return [int(chunk) for chunk in cast(list[bytes] | None, taken) or []]

    def note_requeued(self, job_id: str, chunk_nos: Iterable[int]) -> None:
        """The sweep queued these chunks again: they count as waiting, not claimed."""
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.srem(keys.started, *chunk_nos)
        pipe.hset(keys.meta, "progressTs", self.now())
        pipe.execute()

    # -- reading ----------------------------------------------------------------------

    def statuses(self, metas: Sequence[JobMeta]) -> list[dict[str, Any]]:
        """The job status objects the API and webhooks send: each job's `public()` with
        `chunksDone`, how many of its chunks are recorded (in a rerun round: not rerun)."""
        pipe = self.redis.pipeline(transaction=False)
        for meta in metas:
            pipe.scard(self.keys(meta.job_id).done)
        done = pipe.execute() if metas else []
        return [{**m.public(), "chunksDone": int(n)} for m, n in zip(metas, done, strict=True)]

    def history(self, job_id: str) -> dict[int, list[Any]]:
        """Earlier results of retried rows, by input index (empty for most jobs)."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.keys(job_id).history))
        return {int(index): orjson.loads(blob) for index, blob in raw.items()}

    def iter_outcomes(
        self, meta: JobMeta, start: int = 0, stop: int | None = None
    ) -> Iterator[Outcome]:
        """Stored results of input rows `start..stop-1`, in input order, a chunk at a time."""
        stop = meta.total if stop is None else min(stop, meta.total)
        keys = self.keys(meta.job_id)
        size = meta.chunk_size
        has_moved = bool(self.redis.exists(keys.moved))
        loaded: set[int] = set()
        pending: dict[int, Outcome] = {}
        block_start = start
        while block_start < stop:
            home = block_start // size
            block_stop = min(stop, (home + 1) * size)
            sources = {home}
            if has_moved:
                indexes = [str(i) for i in range(block_start, block_stop)]
                moved = self.redis.hmget(keys.moved, indexes)
                sources.update(int(c) for c in moved if c is not None)
            for chunk_no in sorted(sources - loaded):
                blob = cast(bytes | None, self.redis.get(keys.results(chunk_no)))
                for item in decode_outcomes(blob):
                    pending[item.position] = item
                loaded.add(chunk_no)
            for index in range(block_start, block_stop):
                found = pending.pop(index, None)
                yield found or Outcome(index, RowStatus.INTERNAL_ERROR, MISSING_RESULT, None)
            block_start = block_stop

    # -- the webhook outbox (worker nodes: `worker.outbox`) -----------------------------

    def schedule_webhook(self, job_id: str, delay_ms: int) -> None:
        """The job's webhook is due `delay_ms` from now (Redis's clock), attempts reset."""
        keys = [self.store_keys.webhooks, self.store_keys.webhook_attempts]
        self._schedule_webhook(keys=keys, args=[job_id, delay_ms])

    def claim_webhooks(
        self, limit: int, lease_ms: int, now_ms: int | None = None
    ) -> list[tuple[str, int, int]]:
        """Up to `limit` due webhooks, each leased for `lease_ms`: (job ID, the claim's
        score, the attempt it is). `now_ms` stands in for Redis's clock in tests."""
        keys = [self.store_keys.webhooks, self.store_keys.webhook_attempts]
        args = [lease_ms, limit, "" if now_ms is None else now_ms]
        flat = cast(list[bytes | int], self._claim_webhooks(keys=keys, args=args))
        return [
            (text(cast(bytes, flat[i])), int(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]

    def settle_webhook(self, job_id: str, score: int, retry_ms: int | None) -> bool:
        """Remove the claimed webhook (`retry_ms` None) or make it due in `retry_ms`; False
        when the claim of `score` is no longer the job's entry."""
        keys = [self.store_keys.webhooks, self.store_keys.webhook_attempts]
        args: list[str | int] = [job_id, score, "" if retry_ms is None else retry_ms]
        return bool(self._settle_webhook(keys=keys, args=args))

    def webhooks_due(self) -> dict[str, float]:
        """Every pending webhook and when it is due (ms, Redis's clock)."""
        found = self.redis.zrange(self.store_keys.webhooks, 0, -1, withscores=True)
        return {text(job_id): score for job_id, score in cast(list[tuple[bytes, float]], found)}


def _any_failed(statuses: Iterable[int]) -> bool:
    return not all(is_success(status) for status in statuses)


def decode_items(element: bytes) -> list[tuple[int, Any]]:
    """The `(index, row)` pairs of one stored element: a batch `[[i, row], ...]` or a
    single `[i, row]`; what cannot be decoded is left out."""
    try:
        decoded = orjson.loads(element)
    except orjson.JSONDecodeError:
        return []
    items = decoded if decoded and isinstance(decoded[0], list) else [decoded]
    return [
        (item[0], item[1])
        for item in items
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)
    ]
