"""One benchmark run, step by step, on one PostgreSQL: the bodies are written first (a
loader's 100,000-row and 1,000,000-row batches, and the same rows as COPY files), then
the naive baseline (nothing else running), then the claimpay stack for the memory,
end-to-end and latency measurements. The COPY limits and claimpay on PostgreSQL run in
turns (limit, claimpay, limit, ...), so that a change of load on the shared cores weighs
on both sides of their ratio alike (the stack idles while a limit runs).

A step that fails (a wrong count, an HTTP error, a process that died) is recorded in
`results.errors` with the end of the processes' logs, and the other steps still run."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import baselines, e2e, latency, memory, psql, tenants
from bench.client import ClaimpayClient
from bench.config import (
    PG_DATABASE,
    SMALL_TENANT_DATABASE,
    SQLITE_DATABASE,
    TENANT_B_DATABASE,
    TENANT_B_FIRST_KEY,
    BenchConfig,
)
from bench.cpu import local_redis_pid
from bench.loader import SPACING, PreparedBatch, prepare_batch
from bench.machine import cpu_probe_ms, machine_info
from bench.measures import (
    BenchResults,
    Body,
    Throughput,
    intake_mb_s,
    median_run,
    worker_rows_per_s,
)
from bench.servers import check_servers, redis_namespace, scratch_database, server_versions
from bench.stack import Stack, stack_for
from bench.variants import VARIANTS, prepare_variant
from claimpay.settings import Settings

Say = Callable[[str], None]
BUSY_LOAD = 0.5


@dataclass
class Steps:
    """Runs measurements one by one; a failure is recorded and reported, not raised."""

    results: BenchResults
    say: Say
    stack: Stack | None = None

    @contextlib.contextmanager
    def step(self, key: str, title: str) -> Iterator[None]:
        self.say(f"  {title} ...")
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.results.errors[key] = f"{type(exc).__name__}: {exc}"
            self.say(f"    FAILED after {time.perf_counter() - started:.1f} s: {exc}")
            for service in self.stack.services.values() if self.stack else ():
                self.say(f"    --- end of the {service.name} log ---\n{service.log_tail(12)}")
        else:
            self.say(f"    done in {time.perf_counter() - started:.1f} s")

    def phases(self, measured: Throughput) -> None:
        """The intake's MB/s and the worker side's rows/s of a claimpay run."""
        intake, worker = intake_mb_s(measured), worker_rows_per_s(measured)
        if intake is not None and worker is not None:
            self.say(f"    intake {intake:,.1f} MB/s; after the 202, {worker:,.0f} rows/s")

    def rate(self, measured: Throughput) -> None:
        self.say(
            f"    {measured.rows:,} rows in {measured.seconds:.2f} s: "
            f"{measured.rows_per_s:,.0f} rows/s "
            f"(created {measured.created:,}, updated {measured.updated:,})"
        )
        if len(measured.runs_rows_per_s) > 1:
            self.say("    every run: " + ", ".join(f"{r:,.0f}" for r in measured.runs_rows_per_s))


def run(config: BenchConfig, results: BenchResults, say: Say) -> None:
    """Measure everything into `results`. Raises `ServerUnavailable` before starting
    anything when PostgreSQL or Redis does not answer."""
    check_servers(config)
    started = time.perf_counter()
    results.machine = machine_info(server_versions(config))
    results.settings = _settings(config)
    say(f"bench {config.run_id}: database {config.scratch_db}, Redis prefix {config.key_prefix}")
    load = results.machine.get("load_avg_1m_at_start", 0.0)
    if isinstance(load, float) and load > BUSY_LOAD:
        say(f"  warning: load average {load} at start; other processes share the CPUs")
    steps = Steps(results, say)
    with contextlib.ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="claimpay-bench-")))
        cleanup.enter_context(scratch_database(config))
        cleanup.enter_context(redis_namespace(config))
        if config.logs_dir is not None:
            cleanup.callback(_keep_logs, workdir, config.logs_dir, say)  # after the stop
        sqlite_path = workdir / "lite.db"
        pg_url = config.scratch_url("postgresql+psycopg")
        databases = {
            PG_DATABASE: pg_url,
            SQLITE_DATABASE: f"sqlite:///{sqlite_path}",
            TENANT_B_DATABASE: pg_url,
            SMALL_TENANT_DATABASE: pg_url,
        }
        stack = cleanup.enter_context(stack_for(config, databases, workdir))
        stack.run_cli("db", "upgrade")
        batches = _prepare(config, workdir, steps)
        _naive(config, steps)
        steps.stack = stack
        with _started(stack, config) as client:
            _claimpay(config, stack, client, sqlite_path, batches, steps)
    results.duration_s = round(time.perf_counter() - started, 1)
    results.machine["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    results.machine["probe_ms_at_end"] = cpu_probe_ms()


@dataclass(frozen=True)
class Batches:
    """The two bodies of a run, written to the run's directory before anything is timed."""

    workdir: Path
    batch: PreparedBatch
    big: PreparedBatch


def _prepare(config: BenchConfig, workdir: Path, steps: Steps) -> Batches:
    with steps.step("bodies", "writing the bodies and COPY files (not timed)"):
        batch = prepare_batch(workdir, "batch", config.batch_rows)
        big = prepare_batch(workdir, "big", config.big_rows)
        for name, prepared in (("batch", batch), ("big", big)):
            steps.results.bodies[name] = Body(prepared.rows, prepared.body_bytes, SPACING)
            steps.say(f"    {prepared.rows:,} rows: {prepared.body_bytes / 1e6:,.1f} MB, {SPACING}")
    return Batches(workdir, batch, big)


def _naive(config: BenchConfig, steps: Steps) -> None:
    url, libpq = config.scratch_url("postgresql+psycopg"), config.libpq_url()
    with steps.step("naive", "naive ORM, merge + commit per row"):
        steps.results.naive = baselines.naive_orm(url, libpq, config.naive_rows, 1)
        steps.rate(steps.results.naive)


def _claimpay(
    config: BenchConfig,
    stack: Stack,
    client: ClaimpayClient,
    sqlite_path: Path,
    batches: Batches,
    steps: Steps,
) -> None:
    results = steps.results
    libpq = config.libpq_url()
    pg = e2e.postgres_target(PG_DATABASE, libpq, config.scratch_db)
    redis_pid = local_redis_pid(config.redis_url)
    lite = e2e.sqlite_target(SQLITE_DATABASE, sqlite_path)
    big, batch = batches.big, batches.batch
    # First, while the processes hold only what start-up and warm-up left in them, so
    # that the peaks are the big request's own; the psql limit on the same rows just
    # before it (the stack idles meanwhile).
    with steps.step("big_limit", f"COPY + one merge driven by psql, {big.rows:,} rows"):
        results.big_limit_psql = psql.copy_merge_psql(libpq, big, batches.workdir)
        steps.rate(results.big_limit_psql)
    with steps.step("memory", f"one {big.rows:,}-row request ({big.body_bytes / 1e6:,.0f} MB)"):
        body = big.body()
        results.peaks_before_big_request = memory.lifetime_peaks(stack)
        results.memory = m = memory.big_request(client, stack, pg, big, body, redis_pid)
        del body
        steps.say(
            f"    producer peak {m.producer_peak_bytes / 1e6:,.0f} MB, "
            f"worker peak {m.worker_peak_bytes / 1e6:,.0f} MB"
        )
        steps.rate(m.throughput)
        steps.phases(m.throughput)
    title = "COPY + one merge (psql, then Python) and claimpay end to end, PostgreSQL, in turns"
    body = batch.body()
    with steps.step("postgres", title + _median_of(config)):
        by_psql, by_python, runs = [], [], []
        for _ in range(config.repeat):
            by_psql.append(psql.copy_merge_psql(libpq, batch, batches.workdir))
            runs.append(e2e.end_to_end(client, stack, pg, batch, body, redis_pid))
            by_python.append(baselines.copy_merge(libpq, batch))
        results.limit_psql = median_run(by_psql)
        results.limit = median_run(by_python)
        results.postgres = median_run(runs)
        for label, measured in (
            ("the limit, driven by psql:", results.limit_psql),
            ("the limit, driven from Python:", results.limit),
            ("claimpay:", results.postgres),
        ):
            steps.say(f"    {label}")
            steps.rate(measured)
        steps.phases(results.postgres)
    with steps.step("sqlite", f"claimpay end to end, SQLite{_median_of(config)}"):
        results.sqlite = median_run(
            [
                e2e.end_to_end(client, stack, lite, batch, body, redis_pid)
                for _ in range(config.repeat)
            ]
        )
        steps.rate(results.sqlite)
    for variant in VARIANTS:
        prepared = prepare_variant(batches.workdir, variant, batch)
        name = f"variant-{variant.name}"
        results.bodies[name] = Body(prepared.rows, prepared.body_bytes, variant.label)
        title = f"claimpay end to end, PostgreSQL, a body not tuned for: {variant.label}"
        with steps.step(name, f"{title} ({prepared.body_bytes / 1e6:,.1f} MB)"):
            measured = e2e.end_to_end(client, stack, pg, prepared, prepared.body(), redis_pid)
            results.variants[variant.name] = measured
            steps.rate(measured)
            steps.phases(measured)
    second = prepare_batch(batches.workdir, "tenant-b", batch.rows, TENANT_B_FIRST_KEY)
    title = (
        f"a second tenant's {batch.rows:,}-row batch during the first's {big.rows:,}-row one, "
        "then small batches"
    )
    alone_s = {TENANT_B_DATABASE: results.postgres.seconds} if results.postgres else {}
    if results.memory:
        alone_s[PG_DATABASE] = results.memory.throughput.seconds
    with steps.step("tenants", title):
        results.tenants = t = tenants.tenants_at_once(
            stack.api_url,
            config.jwt_secret,
            stack,
            libpq,
            (tenants.Tenant(PG_DATABASE, big), tenants.Tenant(TENANT_B_DATABASE, second)),
            SMALL_TENANT_DATABASE,
            alone_s,
        )
        for database, run in t.turns.items():
            steps.say(f"    {database}: {run.rows:,} rows in {run.seconds:.2f} s")
        p50, p99 = t.small_p50_ms, t.small_p99_ms
        steps.say(f"    small batches during one: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    title = f"{config.latency_batches} batches of {config.latency_rows} rows"
    with steps.step("latency", title):
        results.latency = lat = latency.small_batches(
            client, stack, pg, config.latency_batches, config.latency_rows
        )
        steps.say(f"    p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms")
    results.peaks_whole_run = memory.lifetime_peaks(stack)


@contextlib.contextmanager
def _started(stack: Stack, config: BenchConfig) -> Iterator[ClaimpayClient]:
    """Start the API and the worker, warm both databases up; a client for the API."""
    stack.start(config.concurrency)
    client = ClaimpayClient(stack.api_url, config.jwt_secret)
    try:
        for database in (PG_DATABASE, SQLITE_DATABASE):
            e2e.warm_up(client, stack, database)
        yield client
    finally:
        client.close()


def _median_of(config: BenchConfig) -> str:
    return f", median of {config.repeat}" if config.repeat > 1 else ""


def _keep_logs(workdir: Path, logs_dir: Path, say: Say) -> None:
    logs_dir.mkdir(parents=True, exist_ok=True)
    for log in sorted(workdir.glob("*.log")):
        shutil.copy2(log, logs_dir / log.name)
    say(f"logs of the API and the worker kept in {logs_dir}")


def _settings(config: BenchConfig) -> dict[str, str | int]:
    defaults = Settings.model_fields
    return {
        "naive_rows": config.naive_rows,
        "batch_rows": config.batch_rows,
        "big_rows": config.big_rows,
        "repeat": config.repeat,
        "latency_batches": config.latency_batches,
        "latency_rows": config.latency_rows,
        "concurrency": config.concurrency,
        "chunk_size": int(defaults["chunk_size"].default),
        "intake_buffer_bytes": int(defaults["intake_buffer_bytes"].default),
    }
