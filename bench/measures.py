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
class MemoryPeak:
    """Peak resident memory (VmHWM) of the API and worker processes for one big request."""

    rows: int
    body_bytes: int
    producer_peak_bytes: int
    worker_peak_bytes: int
    worker_peak_by_process: dict[str, int]
    throughput: Throughput


@dataclass
class BenchResults:
    """Everything one run measured; a field stays None when its step did not run."""

    machine: dict[str, str | int | float] = field(default_factory=dict)
    settings: dict[str, str | int] = field(default_factory=dict)
    naive: Throughput | None = None
    limit: Throughput | None = None
    postgres: Throughput | None = None
    sqlite: Throughput | None = None
    latency: LatencySummary | None = None
    memory: MemoryPeak | None = None
    peaks_before_big_request: dict[str, int] = field(default_factory=dict)
    peaks_whole_run: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0
