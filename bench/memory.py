"""Peak memory of the processes under test for one very large request: VmHWM from
/proc/<pid>/status, reset just before the request (clear_refs) and sampled during it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from bench.client import ClaimpayClient
from bench.e2e import Target, end_to_end
from bench.loader import PreparedBatch
from bench.measures import MemoryPeak
from bench.stack import Stack

SAMPLE_EVERY_S = 0.1


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
    sampler = PeakSampler(stack)

    def sampled() -> contextlib.AbstractContextManager[None]:
        for service in stack.services.values():
            for pid in service.group_pids():
                reset_peak(pid)
        return sampler.running()

    throughput = end_to_end(
        client, stack, target, batch, body, redis_pid, during=sampled, check_results=False
    )
    return MemoryPeak(
        rows=batch.rows,
        body_bytes=len(body),
        producer_peak_bytes=sampler.peak("api"),
        worker_peak_bytes=sampler.peak("worker"),
        worker_peak_by_process={k: v for k, v in sampler.peaks.items() if k.startswith("worker")},
        throughput=throughput,
    )
