"""claimpay end to end: HTTP submit of a batch, poll until every result is stored, check
that the job, the 207 envelope and the table all agree with what was sent."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bench.client import ClaimpayClient
from bench.cpu import CpuMeter, backend_pids
from bench.loader import PreparedBatch
from bench.measures import Throughput
from bench.rows import batch, existing_keys
from bench.stack import Stack
from bench.tables import count_postgres, count_sqlite, reset_postgres, reset_sqlite
from claimpay.envelope import RowStatus

POLL_S = 0.0
"""Wait on the server (`Prefer: wait`): it sees the job end within 10 ms, where a client
polling that often would cost the API ~2 ms of CPU a request, taken from the workers."""
JOB_TIMEOUT_S = 240.0
WARM_UP_FIRST_KEY = 2_000_000_000


class WrongOutcome(Exception):
    """Raised when a job's counts, its results or the table disagree with the batch sent."""


@dataclass(frozen=True)
class Target:
    """Where a batch goes: the configured database name, and how to prepare and count it."""

    database: str
    reset: Callable[[range], None]
    count: Callable[[], int]
    backends: Callable[[], list[int]] = list
    """The pids of the database server processes serving the workers (none for SQLite)."""


def postgres_target(database: str, libpq_url: str, server_database: str) -> Target:
    return Target(
        database,
        lambda keys: reset_postgres(libpq_url, keys),
        lambda: count_postgres(libpq_url),
        lambda: backend_pids(libpq_url, server_database),
    )


def sqlite_target(database: str, path: Path) -> Target:
    return Target(database, lambda keys: reset_sqlite(path, keys), lambda: count_sqlite(path))


def warm_up(client: ClaimpayClient, stack: Stack, database: str) -> None:
    """One small job, so every worker process has its engine and the API its clients."""
    for _ in range(2):
        body = orjson.dumps(batch(10, WARM_UP_FIRST_KEY))
        job_id = client.submit(database, body)
        client.wait(job_id, POLL_S, 60.0, stack.check_alive)


def end_to_end(
    client: ClaimpayClient,
    stack: Stack,
    target: Target,
    batch: PreparedBatch,
    body: bytes,
    redis_pid: int | None,
    during: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext,
    check_results: bool = True,
) -> Throughput:
    """Submit the batch's body (half of its keys already stored) and wait for completion;
    the rate is rows / (first byte sent → completed seen). Besides: the intake (first byte
    sent → the 202) and the worker side (the 202 → the last result stored, the job's
    `finishedAt`). `during()` is entered once the table is reset, around the request
    (a memory sampler); `check_results` reads the 207 envelope back and checks it."""
    count = batch.rows
    existing = existing_keys(count, batch.first_key)
    target.reset(existing)
    meter = CpuMeter(stack, target.backends, redis_pid)
    with during():
        meter.start()
        started = time.perf_counter()
        job_id = client.submit(target.database, body)
        accepted, accepted_at = time.perf_counter(), time.time()
        status = client.wait(job_id, POLL_S, JOB_TIMEOUT_S, stack.check_alive)
        seconds = time.perf_counter() - started
    cpu = meter.stop()
    verify_job(status, count, len(existing))
    if check_results:
        verify_results(client.result_statuses(job_id), count, len(existing))
    stored = target.count()
    if stored != count:
        raise WrongOutcome(f"{target.database}: {stored} rows in the table, expected {count}")
    return Throughput(
        count,
        seconds,
        created=int(status["created"]),
        updated=int(status["updated"]),
        extra={
            **phases(status, len(body), accepted - started, accepted_at),
            **{f"cpu_s_{name}": spent for name, spent in cpu.items()},
        },
    )


def phases(
    status: dict[str, Any], body_bytes: int, submit_s: float, accepted_at: float
) -> dict[str, float | int | str]:
    """The intake (`submit_s`: first byte sent → the 202) and the worker side
    (`after_202_s`: the 202 → the job's `finishedAt`, when its last result was stored)."""
    finished = datetime.fromisoformat(str(status["finishedAt"])).timestamp()
    return {
        "body_bytes": body_bytes,
        "submit_s": round(submit_s, 3),
        "after_202_s": round(max(0.0, finished - accepted_at), 3),
    }


def verify_job(status: dict[str, object], count: int, existing: int) -> None:
    """The job's counters: every row processed, the new ones created, the others updated."""
    expected = {
        "total": count,
        "processed": count,
        "created": count - existing,
        "updated": existing,
        "failed": 0,
    }
    got = {name: status.get(name) for name in expected}
    if got != expected:
        raise WrongOutcome(f"job {status.get('jobId')}: counts {got}, expected {expected}")


def verify_results(statuses: Counter[int], count: int, existing: int) -> None:
    """The 207 envelope: one result per row, 201 for each new key, 200 for each other."""
    expected = Counter({RowStatus.CREATED: count - existing, RowStatus.UPDATED: existing})
    if statuses != expected:
        raise WrongOutcome(f"results {dict(statuses)}, expected {dict(expected)}")
