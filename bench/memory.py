"""Peak memory of the processes under test for one very large request: VmHWM from
/proc/<pid>/status, reset just before the request (clear_refs) and sampled during it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from bench.client import ClaimpayClient
from bench.cpu import CpuMeter
from bench.e2e import JOB_TIMEOUT_S, Target, WrongOutcome, verify_job
from bench.measures import MemoryPeak, Throughput
from bench.rows import body_stream, existing_keys
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


class CountingBody:
    """The request body as pieces, counting the bytes sent; nothing is kept."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = pieces
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            self.sent += len(piece)
            yield piece


def lifetime_peaks(stack: Stack) -> dict[str, int]:
    """VmHWM of every process of the stack so far, before any reset."""
    sampler = PeakSampler(stack)
    sampler.sample()
    return sampler.peaks


def big_request(
    client: ClaimpayClient, stack: Stack, target: Target, count: int, redis_pid: int | None
) -> MemoryPeak:
    """Stream a `count`-row body (half of its keys stored already), wait for the job, and
    report the peak RSS of the API and of the worker's processes during it."""
    existing = existing_keys(count, 1)
    target.reset(existing)
    for service in stack.services.values():
        for pid in service.group_pids():
            reset_peak(pid)
    sampler = PeakSampler(stack)
    body = CountingBody(body_stream(count, 1))
    meter = CpuMeter(stack, target.backends, redis_pid)
    meter.start()
    with sampler.running():
        started = time.perf_counter()
        job_id = client.submit(target.database, body)
        accepted = time.perf_counter()
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
            "submit_s": round(accepted - started, 3),
            "body_bytes": body.sent,
            **{f"cpu_s_{name}": spent for name, spent in cpu.items()},
        },
    )
    return MemoryPeak(
        rows=count,
        body_bytes=body.sent,
        producer_peak_bytes=sampler.peak("api"),
        worker_peak_bytes=sampler.peak("worker"),
        worker_peak_by_process={k: v for k, v in sampler.peaks.items() if k.startswith("worker")},
        throughput=throughput,
    )
