"""Deployment-wide job counters, kept in Redis next to the jobs they count.

Jobs are submitted to one API replica and finished by whichever worker records their last
chunk, so their counters live in one Redis hash (`StoreKeys.stats`, no TTL, a few dozen
fields) and move in the same atomic step as the job itself: sealing counts a submission
(`JobStore.seal`), the Lua script that records a chunk counts its rows once and the job's
end once. The API's `/metrics` reads them at scrape time; every API replica reports the
same totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from redis import Redis

JOB_SIZE_BUCKETS: tuple[float, ...] = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)
"""Upper bounds (rows) of the job size histogram."""
JOB_DURATION_BUCKETS_S: tuple[float, ...] = (
    0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600,
)  # fmt: skip
"""Upper bounds (seconds, from sealing to completion) of the job duration histogram."""

JOBS_SUBMITTED = "jobs:submitted"
ROWS_SUBMITTED = "rows:submitted"
FINISHED_STATES = ("completed", "cancelled")
"""`jobs:<state>` fields, counted when a job ends."""
ROW_OUTCOMES = {
    "created": "rows:created",
    "updated": "rows:updated",
    "failed": "rows:failed",
    "not_processed": "rows:notProcessed",
    "dry_run": "rows:dryRun",
}
"""Outcome label -> field; `failed` is every row neither created, updated nor skipped;
`dry_run` every row of a dry run, whatever it would have done. A row retried by
`POST /jobs/{id}/retry` counts once per attempt."""
SIZE = "size"
DURATION = "duration"


def bound_label(bound: float) -> str:
    """How a bucket bound is written in field names (and read by the Lua scripts)."""
    return f"{bound:g}"


def bucket_field(histogram: str, value: float, bounds: Sequence[float]) -> str:
    """The field of the (non-cumulative) bucket `value` falls in."""
    for bound in bounds:
        if value <= bound:
            return f"{histogram}:le:{bound_label(bound)}"
    return f"{histogram}:le:+Inf"


def submission_increments(rows: int) -> dict[str, int]:
    """What sealing a job of `rows` rows adds to the stats hash."""
    return {
        JOBS_SUBMITTED: 1,
        ROWS_SUBMITTED: rows,
        f"{SIZE}:count": 1,
        f"{SIZE}:sum": rows,
        bucket_field(SIZE, rows, JOB_SIZE_BUCKETS): 1,
    }


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Cumulative buckets `(upper bound, count)` ending with `+Inf`, the sum and count."""

    buckets: list[tuple[float, float]]
    sum: float
    count: float


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """The stats hash, read at once."""

    jobs_submitted: float
    rows_submitted: float
    jobs_finished: dict[str, float]
    rows: dict[str, float]
    job_rows: HistogramSnapshot
    job_duration_s: HistogramSnapshot


def read_stats(redis: Redis, key: str) -> StatsSnapshot:
    """The counters of the deployment whose stats hash is `key`."""
    raw = redis.hgetall(key)
    values = {_text(k): float(v) for k, v in raw.items()}
    return StatsSnapshot(
        jobs_submitted=values.get(JOBS_SUBMITTED, 0.0),
        rows_submitted=values.get(ROWS_SUBMITTED, 0.0),
        jobs_finished={state: values.get(f"jobs:{state}", 0.0) for state in FINISHED_STATES},
        rows={label: values.get(field, 0.0) for label, field in ROW_OUTCOMES.items()},
        job_rows=_histogram(values, SIZE, JOB_SIZE_BUCKETS),
        job_duration_s=_histogram(values, DURATION, JOB_DURATION_BUCKETS_S),
    )


def _histogram(
    values: Mapping[str, float], name: str, bounds: Iterable[float]
) -> HistogramSnapshot:
    buckets: list[tuple[float, float]] = []
    running = 0.0
    for bound in [*bounds, float("inf")]:
        label = "+Inf" if bound == float("inf") else bound_label(bound)
        running += values.get(f"{name}:le:{label}", 0.0)
        buckets.append((bound, running))
    return HistogramSnapshot(
        buckets, values.get(f"{name}:sum", 0.0), values.get(f"{name}:count", 0.0)
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
