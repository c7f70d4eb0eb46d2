"""What each measurement returns: plain values the report turns into rows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Throughput:
    """`rows` applied in `seconds`; `created`/`updated` as the database or the job counted."""

    rows: int
    seconds: float
    created: int
    updated: int
    extra: dict[str, float | int | str] = field(default_factory=dict)
    runs_rows_per_s: list[float] = field(default_factory=list)
    """Every repetition's rate when this is the median of several runs."""

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def median_run(runs: list[Throughput]) -> Throughput:
    """The median repetition (by rate), carrying every repetition's rate."""
    ordered = sorted(runs, key=lambda run: run.rows_per_s)
    middle = ordered[(len(ordered) - 1) // 2]
    rates = [round(run.rows_per_s, 1) for run in runs]
    return dataclasses.replace(middle, runs_rows_per_s=rates)


@dataclass(frozen=True)
class LatencySummary:
    """Submit-to-completed times of small batches, in milliseconds."""

    batches: int
    rows_per_batch: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


@dataclass(frozen=True)
class TenantRun:
    """One tenant's batch among others': its rows and time (first byte sent → completed),
    and the same batch's time alone earlier in the run (None: not measured)."""

    rows: int
    seconds: float
    alone_s: float | None = None


@dataclass(frozen=True)
class TenantsSummary:
    """Several tenants at once (`bench.tenants`): two tenants' batches, the second sent
    once the first's is accepted, and a third tenant's small batches (submit → completed)
    while a big job runs."""

    turns: dict[str, TenantRun]
    """Each tenant's batch, by its database name, the first tenant first."""
    together_s: float
    """The first tenant's first byte sent → the last tenant's job completed."""
    small_batches: int
    small_rows: int
    small_p50_ms: float
    small_p99_ms: float
    during_rows: int
    during_s: float
    """The time of the job the small batches ran beside, and its rows."""

    @property
    def together_rows_per_s(self) -> float:
        """Both tenants' rows over the time until the last one completed."""
        rows = sum(run.rows for run in self.turns.values())
        return rows / self.together_s if self.together_s > 0 else 0.0


@dataclass(frozen=True)
class MemoryPeak:
    """Peak resident memory (VmHWM) of the API and worker processes for one big request."""

    rows: int
    body_bytes: int
    producer_peak_bytes: int
    worker_peak_bytes: int
    worker_peak_by_process: dict[str, int]
    throughput: Throughput


@dataclass(frozen=True)
class Body:
    """A request body the bench sends: rows, size and how it is serialized."""

    rows: int
    bytes: int
    spacing: str


@dataclass
class BenchResults:
    """Everything one run measured; a field stays None when its step did not run."""

    machine: dict[str, str | int | float] = field(default_factory=dict)
    settings: dict[str, str | int] = field(default_factory=dict)
    bodies: dict[str, Body] = field(default_factory=dict)
    """The bodies sent, by name (`batch`, `big`)."""
    naive: Throughput | None = None
    limit_psql: Throughput | None = None
    """COPY + one merge driven by `psql` from a prepared file: the strongest limit."""
    limit: Throughput | None = None
    """The same driven from Python (psycopg)."""
    postgres: Throughput | None = None
    sqlite: Throughput | None = None
    latency: LatencySummary | None = None
    variants: dict[str, Throughput] = field(default_factory=dict)
    """claimpay end to end on PostgreSQL, once per body of `bench.variants`, by name."""
    tenants: TenantsSummary | None = None
    big_limit_psql: Throughput | None = None
    """The `psql` limit on the big (memory) request's rows."""
    memory: MemoryPeak | None = None
    peaks_before_big_request: dict[str, int] = field(default_factory=dict)
    peaks_whole_run: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0


def intake_mb_s(measured: Throughput) -> float | None:
    """Body MB (10^6 bytes) per second from the first byte sent to the 202."""
    seconds, size = measured.extra.get("submit_s"), measured.extra.get("body_bytes")
    if not isinstance(seconds, int | float) or not isinstance(size, int) or seconds <= 0:
        return None
    return size / 1e6 / seconds


def worker_rows_per_s(measured: Throughput) -> float | None:
    """Rows per second from the 202 to the last result stored."""
    seconds = measured.extra.get("after_202_s")
    if not isinstance(seconds, int | float) or seconds <= 0:
        return None
    return measured.rows / seconds
