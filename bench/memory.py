"""Peak memory of the processes under test for one very large request: VmHWM from
/proc/<pid>/status, reset just before the request (clear_refs) and sampled during it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.client import ClaimpayClient
from bench.cpu import CpuMeter
from bench.e2e import JOB_TIMEOUT_S, Target, WrongOutcome, phases, verify_job
from bench.loader import PreparedBatch
from bench.measures import MemoryPeak, Throughput
from bench.rows import existing_keys
from bench.stack import Stack

SAMPLE_EVERY_S = 0.1
BIG_POLL_S = 0.0
"""Wait on the server, as `bench.e2e` does."""


def vm_hwm(pid: int) -> int:
    """The process's peak resident set size in bytes (0 if it is gone)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux: `5` to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakSampler:
    """Keeps, per process of the stack, the highest VmHWM seen; sampling in a thread also
    catches a pool process that exits before the end."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-sampler", daemon=True)

    def sample(self) -> None:
        for name, service in self.stack.services.items():
            for pid in service.group_pids():
                label = f"{name}:{pid}"
                self.peaks[label] = max(self.peaks.get(label, 0), vm_hwm(pid))

    def peak(self, service: str) -> int:
        return max((v for k, v in self.peaks.items() if k.startswith(f"{service}:")), default=0)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()
            self.sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.sample()


def lifetime_peaks(stack: Stack) -> dict[str, int]:
    """VmHWM of every process of the stack so far, before any reset."""
    sampler = PeakSampler(stack)
    sampler.sample()
    return sampler.peaks


def big_request(
    client: ClaimpayClient,
    stack: Stack,
    target: Target,
    batch: PreparedBatch,
    body: bytes,
    redis_pid: int | None,
) -> MemoryPeak:
    """Send a big batch's body (half of its keys stored already), wait for the job, and
    report the peak RSS of the API and of the worker's processes during it."""
    count = batch.rows
    existing = existing_keys(count, batch.first_key)
    target.reset(existing)
    for service in stack.services.values():
        for pid in service.group_pids():
            reset_peak(pid)
    sampler = PeakSampler(stack)
    meter = CpuMeter(stack, target.backends, redis_pid)
    meter.start()
    with sampler.running():
        started = time.perf_counter()
        job_id = client.submit(target.database, body)
        accepted, accepted_at = time.perf_counter(), time.time()
        status = client.wait(job_id, BIG_POLL_S, JOB_TIMEOUT_S, stack.check_alive)
        seconds = time.perf_counter() - started
    cpu = meter.stop()
    verify_job(status, count, len(existing))
    stored = target.count()
    if stored != count:
        raise WrongOutcome(f"{target.database}: {stored} rows in the table, expected {count}")
    throughput = Throughput(
        count,
        seconds,
        created=int(status["created"]),
        updated=int(status["updated"]),
        extra={
            **phases(status, len(body), accepted - started, accepted_at),
            **{f"cpu_s_{name}": spent for name, spent in cpu.items()},
        },
    )
    return MemoryPeak(
        rows=count,
        body_bytes=len(body),
        producer_peak_bytes=sampler.peak("api"),
        worker_peak_bytes=sampler.peak("worker"),
        worker_peak_by_process={k: v for k, v in sampler.peaks.items() if k.startswith("worker")},
        throughput=throughput,
    )
