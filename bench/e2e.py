"""claimpay end to end: HTTP submit of a batch, poll until every result is stored, check
that the job, the 207 envelope and the table all agree with what was sent."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.client import ClaimpayClient
from bench.cpu import CpuMeter, backend_pids
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
    client: ClaimpayClient, stack: Stack, target: Target, count: int, redis_pid: int | None
) -> Throughput:
    """Submit `count` rows (half of their keys already stored) and wait for completion;
    the rate is rows / (submit start → completed seen)."""
    first_key = 1
    existing = existing_keys(count, first_key)
    target.reset(existing)
    body = orjson.dumps(batch(count, first_key))
    meter = CpuMeter(stack, target.backends, redis_pid)
    meter.start()
    started = time.perf_counter()
    job_id = client.submit(target.database, body)
    accepted = time.perf_counter()
    status = client.wait(job_id, POLL_S, JOB_TIMEOUT_S, stack.check_alive)
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    verify_job(status, count, len(existing))
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
            "submit_s": round(accepted - started, 3),
            "body_bytes": len(body),
            **{f"cpu_s_{name}": spent for name, spent in cpu.items()},
        },
    )


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
