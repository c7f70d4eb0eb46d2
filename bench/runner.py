"""One benchmark run, step by step, on one PostgreSQL: the naive baseline first (nothing
else running), then the claimpay stack for the memory, end-to-end and latency
measurements. The COPY limit and claimpay on PostgreSQL run in turns (limit, claimpay,
limit, ...), so that a change of load on the shared cores weighs on both sides of their
ratio alike (the stack idles while the limit runs).

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

from bench import baselines, e2e, latency, memory
from bench.client import ClaimpayClient
from bench.config import PG_DATABASE, SQLITE_DATABASE, BenchConfig
from bench.cpu import local_redis_pid
from bench.machine import machine_info
from bench.measures import BenchResults, Throughput, median_run
from bench.servers import check_servers, redis_namespace, scratch_database, server_versions
from bench.stack import Stack, stack_for
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
        databases = {
            PG_DATABASE: config.scratch_url("postgresql+psycopg"),
            SQLITE_DATABASE: f"sqlite:///{sqlite_path}",
        }
        stack = cleanup.enter_context(stack_for(config, databases, workdir))
        stack.run_cli("db", "upgrade")
        _naive(config, steps)
        steps.stack = stack
        with _started(stack, config) as client:
            _claimpay(config, stack, client, sqlite_path, steps)
    results.duration_s = round(time.perf_counter() - started, 1)
    results.machine["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)


def _naive(config: BenchConfig, steps: Steps) -> None:
    url, libpq = config.scratch_url("postgresql+psycopg"), config.libpq_url()
    with steps.step("naive", "naive ORM, merge + commit per row"):
        steps.results.naive = baselines.naive_orm(url, libpq, config.naive_rows, 1)
        steps.rate(steps.results.naive)


def _claimpay(
    config: BenchConfig, stack: Stack, client: ClaimpayClient, sqlite_path: Path, steps: Steps
) -> None:
    results = steps.results
    pg = e2e.postgres_target(PG_DATABASE, config.libpq_url(), config.scratch_db)
    redis_pid = local_redis_pid(config.redis_url)
    lite = e2e.sqlite_target(SQLITE_DATABASE, sqlite_path)
    # First, while the processes hold only what start-up and warm-up left in them, so
    # that the peaks are the big request's own.
    with steps.step("memory", f"one {config.big_rows:,}-row request, streamed"):
        results.peaks_before_big_request = memory.lifetime_peaks(stack)
        results.memory = m = memory.big_request(client, stack, pg, config.big_rows, redis_pid)
        steps.say(
            f"    producer peak {m.producer_peak_bytes / 1e6:,.0f} MB, "
            f"worker peak {m.worker_peak_bytes / 1e6:,.0f} MB"
        )
        steps.rate(m.throughput)
    title = "COPY + one merge (the limit) and claimpay end to end, PostgreSQL, in turns"
    with steps.step("postgres", title + _median_of(config)):
        limits, runs = [], []
        for _ in range(config.repeat):
            limits.append(baselines.copy_merge(config.libpq_url(), config.batch_rows, 1))
            runs.append(e2e.end_to_end(client, stack, pg, config.batch_rows, redis_pid))
        results.limit, results.postgres = median_run(limits), median_run(runs)
        steps.say("    the limit:")
        steps.rate(results.limit)
        steps.say("    claimpay:")
        steps.rate(results.postgres)
    with steps.step("sqlite", f"claimpay end to end, SQLite{_median_of(config)}"):
        results.sqlite = median_run(
            [
                e2e.end_to_end(client, stack, lite, config.batch_rows, redis_pid)
                for _ in range(config.repeat)
            ]
        )
        steps.rate(results.sqlite)
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
