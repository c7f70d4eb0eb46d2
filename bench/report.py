"""The run's verdict: a table (measure, value, target, result) on the terminal, the same
table as Markdown (`bench/results/latest.md`) and every number as JSON (`latest.json`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measures import BenchResults, Throughput, intake_mb_s, worker_rows_per_s

LIMIT_RATIO_MIN = 0.6
BIG_LIMIT_RATIO_MIN = 0.5
NAIVE_RATIO_MIN = 60.0
SQLITE_ROWS_PER_S_MIN = 30_000.0
PRODUCER_PEAK_MB_MAX = 300.0
WORKER_PEAK_MB_MAX = 250.0
P50_MS_MAX = 30.0
P99_MS_MAX = 100.0
MB = 1_000_000


@dataclass(frozen=True)
class Row:
    """One line of the table; `passed` is None for a reference figure without a target."""

    measure: str
    value: str
    target: str = ""
    passed: bool | None = None

    @property
    def result(self) -> str:
        return {True: "pass", False: "FAIL", None: ""}[self.passed]


def table_rows(results: BenchResults) -> list[Row]:
    """The table, in the order of the issue's targets."""
    rows = [
        *_throughput_rows(results),
        *_variant_rows(results),
        *_memory_rows(results),
        *_latency_rows(results),
        *_tenant_rows(results),
    ]
    return rows + [
        Row(f"{step}: did not complete", _shorten(error), "completes", False)
        for step, error in results.errors.items()
    ]


def _shorten(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _throughput_rows(r: BenchResults) -> list[Row]:
    rows: list[Row] = []
    if r.naive:
        label = f"naive ORM, merge + commit per row ({r.naive.rows:,} rows)"
        rows.append(Row(label, _rate(r.naive.rows_per_s)))
    if r.limit_psql:
        runs = _median(r.limit_psql)
        label = f"COPY + one merge by psql, the limit ({_rows(r.limit_psql)}{runs})"
        rows.append(Row(label, _rate(r.limit_psql.rows_per_s)))
    if r.limit:
        label = f"COPY + one merge from Python (psycopg) ({_rows(r.limit)}{_median(r.limit)})"
        rows.append(Row(label, _rate(r.limit.rows_per_s)))
        rows.extend(_cpu_rows(r.limit))
    if r.postgres:
        pg = r.postgres.rows_per_s
        body = _body(r, "batch")
        label = f"claimpay end to end, PostgreSQL ({body}{_median(r.postgres)})"
        rows.append(Row(label, _rate(pg)))
        rows.extend(_phase_rows(r.postgres))
        rows.extend(_cpu_rows(r.postgres))
        if r.limit_psql:
            ratio = pg / r.limit_psql.rows_per_s
            target = f">= {LIMIT_RATIO_MIN}"
            passed = ratio >= LIMIT_RATIO_MIN
            rows.append(Row("claimpay / limit (psql)", f"{ratio:.3f}", target, passed))
        if r.limit:
            rows.append(Row("claimpay / limit (Python)", f"{pg / r.limit.rows_per_s:.3f}"))
        if r.naive:
            ratio = pg / r.naive.rows_per_s
            target = f">= {NAIVE_RATIO_MIN:.0f}x"
            rows.append(Row("claimpay / naive", f"{ratio:.0f}x", target, ratio >= NAIVE_RATIO_MIN))
    if r.sqlite:
        lite = r.sqlite.rows_per_s
        label = f"claimpay end to end, SQLite ({_body(r, 'batch')}{_median(r.sqlite)})"
        target = f">= {SQLITE_ROWS_PER_S_MIN:,.0f} rows/s"
        rows.append(Row(label, _rate(lite), target, lite >= SQLITE_ROWS_PER_S_MIN))
        rows.extend(_phase_rows(r.sqlite))
        rows.extend(_cpu_rows(r.sqlite))
    return rows


def _variant_rows(r: BenchResults) -> list[Row]:
    """One row per body not tuned for: end to end, with its intake and worker side."""
    rows: list[Row] = []
    for name, measured in r.variants.items():
        body = _body(r, f"variant-{name}")
        intake, worker = intake_mb_s(measured), worker_rows_per_s(measured)
        phases = (
            f"intake {intake:,.1f} MB/s, worker side {_rate(worker)}" if intake and worker else ""
        )
        ratio = (
            f"; {measured.rows_per_s / r.limit_psql.rows_per_s:.3f} of the limit"
            if r.limit_psql
            else ""
        )
        label = f"  not tuned for: {body}: {phases}{ratio}"
        rows.append(Row(label, _rate(measured.rows_per_s)))
    if rows:
        rows.insert(
            0, Row("claimpay end to end, PostgreSQL, bodies the bench was not tuned for", "")
        )
    return rows


def _rows(measured: Throughput) -> str:
    return f"{measured.rows:,} rows"


def _body(r: BenchResults, name: str) -> str:
    """`100,000 rows, 32.6 MB body, json.dumps spacing` for a body of the run."""
    body = r.bodies.get(name)
    if body is None:
        return "?"
    return f"{body.rows:,} rows, {body.bytes / MB:,.1f} MB body, {body.spacing}"


def _phase_rows(measured: Throughput) -> list[Row]:
    """The intake (first byte sent → 202) and the worker side (202 → last result stored)."""
    rows = []
    intake, worker = intake_mb_s(measured), worker_rows_per_s(measured)
    if intake is not None:
        seconds = float(measured.extra["submit_s"])
        label = f"  intake, first byte sent → 202 ({seconds:.2f} s)"
        rows.append(Row(label, f"{intake:,.1f} MB/s"))
    if worker is not None:
        seconds = float(measured.extra["after_202_s"])
        label = f"  worker side, 202 → last result stored ({seconds:.2f} s)"
        rows.append(Row(label, _rate(worker)))
    return rows


def _cpu_rows(measured: Throughput) -> list[Row]:
    """Where the (median) run's CPU time went, per process kind: one row, or none."""
    parts = {
        name.removeprefix("cpu_s_"): float(value)
        for name, value in measured.extra.items()
        if name.startswith("cpu_s_") and isinstance(value, int | float) and value > 0
    }
    if not parts:
        return []
    detail = ", ".join(f"{name} {seconds:.2f}" for name, seconds in parts.items())
    return [Row(f"CPU-seconds of that run: {detail}", f"{sum(parts.values()):.2f} s")]


def _memory_rows(r: BenchResults) -> list[Row]:
    rows: list[Row] = []
    if r.big_limit_psql:
        label = f"COPY + one merge by psql, the limit ({_rows(r.big_limit_psql)})"
        rows.append(Row(label, _rate(r.big_limit_psql.rows_per_s)))
    if not r.memory:
        return rows
    m = r.memory
    producer, worker = m.producer_peak_bytes / MB, m.worker_peak_bytes / MB
    processes = len(m.worker_peak_by_process)
    big = m.throughput.rows_per_s
    rows.append(Row(f"claimpay end to end, PostgreSQL ({_body(r, 'big')})", _rate(big)))
    rows.extend(_phase_rows(m.throughput))
    rows.extend(_cpu_rows(m.throughput))
    if r.big_limit_psql:
        ratio = big / r.big_limit_psql.rows_per_s
        target = f">= {BIG_LIMIT_RATIO_MIN}"
        passed = ratio >= BIG_LIMIT_RATIO_MIN
        rows.append(Row("claimpay / limit (psql), same rows", f"{ratio:.3f}", target, passed))
    whole_run = [
        Row(f"{name} peak RSS over the whole run", f"{peak / MB:,.0f} MB")
        for name, peak in _peaks_by_service(r.peaks_whole_run).items()
    ]
    return [
        *rows,
        Row(
            f"producer peak RSS, {m.rows:,}-row request ({m.body_bytes / MB:,.0f} MB body)",
            f"{producer:,.0f} MB",
            f"< {PRODUCER_PEAK_MB_MAX:.0f} MB",
            producer < PRODUCER_PEAK_MB_MAX,
        ),
        Row(
            f"worker peak RSS (max of its {processes} processes), same request",
            f"{worker:,.0f} MB",
            f"< {WORKER_PEAK_MB_MAX:.0f} MB",
            worker < WORKER_PEAK_MB_MAX,
        ),
        *whole_run,
    ]


def _peaks_by_service(peaks: dict[str, int]) -> dict[str, int]:
    """`{"api:123": n, "worker:456": m, ...}` as the highest peak per service."""
    names = {"api": "producer", "worker": "worker"}
    by_service: dict[str, int] = {}
    for label, peak in peaks.items():
        name = names.get(label.split(":")[0], label)
        by_service[name] = max(by_service.get(name, 0), peak)
    return by_service


def _latency_rows(r: BenchResults) -> list[Row]:
    if not r.latency:
        return []
    lat = r.latency
    label = f"{lat.rows_per_batch}-row batch, submit → completed ({lat.batches} batches)"
    return [
        Row(
            f"{label}: p50",
            f"{lat.p50_ms:.1f} ms",
            f"< {P50_MS_MAX:.0f} ms",
            lat.p50_ms < P50_MS_MAX,
        ),
        Row(
            f"{label}: p99",
            f"{lat.p99_ms:.1f} ms",
            f"< {P99_MS_MAX:.0f} ms",
            lat.p99_ms < P99_MS_MAX,
        ),
    ]


def _tenant_rows(r: BenchResults) -> list[Row]:
    if not r.tenants:
        return []
    t = r.tenants
    rows = [Row("several tenants at once (PostgreSQL)", "")]
    for n, (database, run) in enumerate(t.turns.items()):
        when = "sent first" if n == 0 else "sent at the first one's 202"
        alone = "" if run.alone_s is None else f"; alone {run.alone_s:.2f} s"
        label = f"  tenant {database}, {run.rows:,} rows ({when}): first byte → completed{alone}"
        rows.append(Row(label, f"{run.seconds:.2f} s"))
    label = f"  both tenants' rows, first byte sent → the last completed ({t.together_s:.2f} s)"
    rows.append(Row(label, _rate(t.together_rows_per_s)))
    label = (
        f"  {t.small_rows}-row batches of a third tenant during a {t.during_rows:,}-row job "
        f"({t.small_batches})"
    )
    rows.append(Row(f"{label}: p50", f"{t.small_p50_ms:.1f} ms"))
    rows.append(Row(f"{label}: p99", f"{t.small_p99_ms:.1f} ms"))
    rows.append(Row("  that job's time meanwhile", f"{t.during_s:.2f} s"))
    return rows


def text_table(rows: list[Row]) -> str:
    """The table for a terminal, columns aligned."""
    header = Row("measure", "value", "target")
    names = ("measure", "value", "target")
    widths = [max(len(getattr(row, name)) for row in [header, *rows]) for name in names]
    lines = []
    for row in [header, *rows]:
        result = "result" if row is header else row.result
        measure, value, target = (row.measure, row.value, row.target)
        lines.append(
            f"{measure:<{widths[0]}}  {value:>{widths[1]}}  {target:<{widths[2]}}  {result}"
        )
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown(results: BenchResults, rows: list[Row]) -> str:
    """The table and the machine it ran on, for the README."""
    m = results.machine
    lines = [
        "| measure | value | target | result |",
        "|---|--:|---|---|",
        *(
            "| "
            + " | ".join(_cell(c) for c in (row.measure, row.value, row.target, row.result))
            + " |"
            for row in rows
        ),
        "",
        f"Measured by `make bench` on {m.get('date')}: {m.get('cpu')}, {m.get('cores')} cores, "
        f"{m.get('ram_gib')} GiB RAM, {m.get('os')}; PostgreSQL {m.get('postgresql')}, "
        f"Redis {m.get('redis')}, Python {m.get('python')}; commit {m.get('commit')}; "
        f"load average {m.get('load_avg_1m_at_start')} at start, "
        f"{m.get('load_avg_1m_at_end')} at the end (other processes share the cores); "
        f"a fixed Python loop (`bench.machine.cpu_probe_ms`) took {m.get('probe_ms_at_start')} "
        f"ms of CPU at start, {m.get('probe_ms_at_end')} ms at the end. "
        "The bodies carry every field a loading tool sends (the seed's 11, audit dates as "
        "ISO 8601 text, some with an offset), serialized as `json.dumps` writes them. "
        "Each measurement starts from a table that holds every other key of its batch, so "
        "half the rows are creates and half are updates; the API and a worker with "
        f"--concurrency {results.settings.get('concurrency')} run as real processes. "
        f"RSS is VmHWM (MB = 10^6 bytes). The whole run took {results.duration_s:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def write_reports(results: BenchResults, rows: list[Row], directory: Path) -> tuple[Path, Path]:
    """`latest.json` (every number) and `latest.md` (the table) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "latest.json", directory / "latest.md"
    document = dataclasses.asdict(results)
    document["derived"] = _derived(results)
    document["table"] = [{**dataclasses.asdict(row), "result": row.result} for row in rows]
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    md_path.write_text(markdown(results, rows))
    return json_path, md_path


def _derived(r: BenchResults) -> dict[str, Any]:
    derived: dict[str, Any] = {}
    for name in ("naive", "limit_psql", "limit", "postgres", "sqlite", "big_limit_psql"):
        measured = getattr(r, name)
        if measured is not None:
            derived[f"{name}_rows_per_s"] = round(measured.rows_per_s, 1)
    if r.memory:
        derived["big_request_rows_per_s"] = round(r.memory.throughput.rows_per_s, 1)
    if r.postgres and r.limit_psql:
        derived["claimpay_over_limit"] = round(r.postgres.rows_per_s / r.limit_psql.rows_per_s, 3)
    if r.postgres and r.limit:
        derived["claimpay_over_python_limit"] = round(r.postgres.rows_per_s / r.limit.rows_per_s, 3)
    if r.memory and r.big_limit_psql:
        derived["big_claimpay_over_limit"] = round(
            r.memory.throughput.rows_per_s / r.big_limit_psql.rows_per_s, 3
        )
    for name, measured in r.variants.items():
        derived[f"variant_{name}_rows_per_s"] = round(measured.rows_per_s, 1)
        derived[f"variant_{name}_intake_mb_s"] = _round(intake_mb_s(measured))
    for name, measured in (("postgres", r.postgres), ("sqlite", r.sqlite)):
        if measured is not None:
            derived[f"{name}_intake_mb_s"] = _round(intake_mb_s(measured))
            derived[f"{name}_after_202_rows_per_s"] = _round(worker_rows_per_s(measured))
    if r.memory:
        derived["big_intake_mb_s"] = _round(intake_mb_s(r.memory.throughput))
        derived["big_after_202_rows_per_s"] = _round(worker_rows_per_s(r.memory.throughput))
    if r.tenants:
        derived["tenants_together_rows_per_s"] = round(r.tenants.together_rows_per_s, 1)
    if r.postgres and r.naive:
        derived["claimpay_over_naive"] = round(r.postgres.rows_per_s / r.naive.rows_per_s, 1)
    return derived


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _median(measured: Throughput) -> str:
    runs = len(measured.runs_rows_per_s)
    return f", median of {runs}" if runs > 1 else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _rate(rows_per_s: float) -> str:
    return f"{rows_per_s:,.0f} rows/s"
