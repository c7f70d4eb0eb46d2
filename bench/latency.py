"""Latency of a small batch (a loader's rows, `json.dumps` spacing): submit → completed
seen, polling `GET /jobs/{id}` every ~1 ms."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from bench.client import ClaimpayClient
from bench.e2e import Target, verify_job
from bench.loader import loader_rows
from bench.measures import LatencySummary
from bench.rows import existing_keys
from bench.stack import Stack

POLL_S = 0.001
TIMEOUT_S = 30.0


def small_batches(
    client: ClaimpayClient, stack: Stack, target: Target, batches: int, rows: int
) -> LatencySummary:
    """`batches` sequential batches of `rows` rows each (half of the keys stored already)."""
    target.reset(existing_keys(batches * rows, 1))
    bodies = [
        json.dumps(list(loader_rows(rows, 1 + n * rows, seed=n))).encode() for n in range(batches)
    ]
    times_ms = [
        timed_batch(client, stack, target.database, body, rows, rows // 2, POLL_S)
        for body in bodies
    ]
    return LatencySummary(
        batches=batches,
        rows_per_batch=rows,
        p50_ms=percentile(times_ms, 50),
        p99_ms=percentile(times_ms, 99),
        max_ms=max(times_ms),
        mean_ms=statistics.fmean(times_ms),
    )


def timed_batch(
    client: ClaimpayClient,
    stack: Stack,
    database: str,
    body: bytes,
    rows: int,
    existing: int,
    poll_s: float,
    timeout_s: float = TIMEOUT_S,
    accepted: Callable[[], None] = lambda: None,
) -> float:
    """Milliseconds from submitting `body` until its job is seen completed (polling every
    `poll_s`, or waiting on the server with 0), its counts checked; `accepted` runs at
    the 202."""
    started = time.perf_counter()
    job_id = client.submit(database, body)
    accepted()
    status = client.wait(job_id, poll_s, timeout_s, stack.check_alive)
    elapsed_ms = (time.perf_counter() - started) * 1000
    verify_job(status, rows, existing)
    return elapsed_ms


def percentile(values: list[float], pct: float) -> float:
    """The `pct`-th percentile, linearly interpolated between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
