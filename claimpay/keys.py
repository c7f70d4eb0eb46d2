"""Every Redis key claimpay uses, built in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreKeys:
    """Keys of the whole deployment (one key prefix)."""

    prefix: str

    @property
    def active(self) -> str:
        """Sorted set: IDs of jobs not finished yet, scored by submission time."""
        return f"{self.prefix}:active"

    @property
    def ended(self) -> str:
        """Pub/sub channel: the ID of each job as it ends (completed or cancelled), for
        the requests waiting on it (`Prefer: wait`)."""
        return f"{self.prefix}:ended"

    @property
    def sweep_lock(self) -> str:
        """String with a TTL: whoever sets it runs this interval's recovery sweep."""
        return f"{self.prefix}:sweep-lock"

    @property
    def epoch(self) -> str:
        """String without TTL: the store's epoch, in every job ID it issues (a store that
        lost its data lost this too; see `claimpay.jobids`)."""
        return f"{self.prefix}:epoch"

    def stalled(self, node: str) -> str:
        """Sorted set: a worker node's claims stuck in a database call, scored by when
        (Redis time) the mark expires (`claimpay worker-health` fails while one is live)."""
        return f"{self.prefix}:stalled:{node}"

    @property
    def webhooks(self) -> str:
        """Sorted set without TTL: IDs of finished jobs whose completion webhook is due,
        scored by when (epoch ms) the next attempt may start; an entry being delivered is
        scored past its attempt's deadline, so a sender that dies leaves it due again."""
        return f"{self.prefix}:webhooks"

    @property
    def webhook_attempts(self) -> str:
        """Hash without TTL: job ID -> delivery attempts of its pending webhook."""
        return f"{self.prefix}:webhooks:attempts"

    def idempotency(self, scope: str) -> str:
        """Hash: the job an `Idempotency-Key` created (scoped by API key and database)."""
        return f"{self.prefix}:idem:{scope}"

    @property
    def stats(self) -> str:
        """Hash without TTL: deployment-wide job and row counters (see `claimpay.stats`)."""
        return f"{self.prefix}:stats"

    def jobs_of(self, database: str) -> str:
        """Sorted set: IDs of a database's sealed jobs, scored by submission time (epoch s)
        for `GET /jobs`; entries older than the result TTL are removed as jobs are sealed
        and listed, and the key expires a TTL after its newest entry."""
        return f"{self.prefix}:jobs:{database}"

    def jobs_in_state(self, database: str, state: str) -> str:
        """Sorted set: the part of `jobs_of(database)` in `state` (`GET /jobs?state=`).
        The Lua scripts that change a job's state move it from one to the other, naming
        them as `<jobs_of>:<state>` from the job's `listIndex` field."""
        return f"{self.jobs_of(database)}:{state}"

    def rate_bucket(self, key_id: str) -> str:
        """Hash with a short TTL: an API key's request token bucket (`tokens`, `ts`)."""
        return f"{self.prefix}:rate:{key_id}"

    def login_failures(self, name_digest: str) -> str:
        """String with a TTL: failed logins for one user name (by its digest), expiring
        `login_lockout_s` after the last one."""
        return f"{self.prefix}:login-fail:{name_digest}"

    def key_jobs(self, key_id: str) -> str:
        """Sorted set: an API key's unfinished jobs, scored by admission time."""
        return f"{self.prefix}:key-jobs:{key_id}"

    def job(self, job_id: str) -> JobKeys:
        return JobKeys(self.prefix, job_id)


@dataclass(frozen=True, slots=True)
class JobKeys:
    """The keys of one job. All of them carry a TTL (`result_ttl_s`)."""

    prefix: str
    job_id: str

    @property
    def meta(self) -> str:
        """Hash: state, database, entity, counters, timestamps, cancel flag."""
        return f"{self.prefix}:job:{self.job_id}"

    def rows(self, chunk_no: int) -> str:
        """List of `[input_index, row]` JSON items waiting to be applied; deleted once done."""
        return f"{self.meta}:rows:{chunk_no}"

    def results(self, chunk_no: int) -> str:
        """String: the chunk's compact results, a JSON list of `[index, status, body, key]`."""
        return f"{self.meta}:res:{chunk_no}"

    def lease(self, chunk_no: int) -> str:
        """String with a short TTL, kept alive by the worker applying the chunk."""
        return f"{self.meta}:lease:{chunk_no}"

    @property
    def chunks(self) -> str:
        """Set of every chunk number of the job (empty chunks are never created)."""
        return f"{self.meta}:chunks"

    @property
    def waiting(self) -> str:
        """List of the chunk numbers not queued yet, in order (`job_window_chunks`): each
        chunk recorded takes the first and queues it."""
        return f"{self.meta}:waiting"

    @property
    def started(self) -> str:
        """Set of chunk numbers a worker has claimed and not yet recorded."""
        return f"{self.meta}:started"

    @property
    def done(self) -> str:
        """Set of chunk numbers whose results are stored; decides exactly-once counting."""
        return f"{self.meta}:done"

    @property
    def deliveries(self) -> str:
        """Hash: chunk number -> how many times a worker claimed it (poison detection)."""
        return f"{self.meta}:deliveries"

    @property
    def history(self) -> str:
        """Hash: input index -> JSON list of the row's earlier results (retried rows)."""
        return f"{self.meta}:history"

    def rerun_rows(self, chunk_no: int) -> str:
        """Set of the input indexes a rerun round applies again in this chunk (the key's
        `retry` spelling predates the name: stored jobs keep it)."""
        return f"{self.meta}:retry:{chunk_no}"

    @property
    def rerun_lock(self) -> str:
        """String with a TTL: held while a rerun of the job is being prepared."""
        return f"{self.meta}:retry-lock"

    @property
    def moved(self) -> str:
        """Hash: input index -> chunk, for repeated keys placed with their first occurrence."""
        return f"{self.meta}:moved"

    def all_static(self) -> list[str]:
        return [
            self.meta,
            self.chunks,
            self.waiting,
            self.started,
            self.done,
            self.deliveries,
            self.moved,
            self.history,
        ]
