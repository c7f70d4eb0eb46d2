"""The machine a run measured: CPU, cores, memory, server and Python versions, date, commit."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def machine_info(server_versions: dict[str, str]) -> dict[str, str | int | float]:
    """Everything needed to compare this run with another one."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "ram_gib": round(_mem_total_bytes() / 2**30, 1),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "postgresql": server_versions.get("postgresql", "?"),
        "redis": server_versions.get("redis", "?"),
        "commit": _commit(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "probe_ms_at_start": cpu_probe_ms(),
    }


PROBE_LOOPS = 2_000_000


def cpu_probe_ms() -> float:
    """CPU milliseconds of a fixed Python loop, best of 3: the machine's speed at that
    moment. On a shared host it moves while the load average does not (the same loop
    took twice as long an hour later on one machine), and every figure of a run moves
    with it; the ratios of one run much less."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for i in range(PROBE_LOOPS):
            total += i
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_bytes() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=10
        )
        return done.stdout.strip()

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = git("rev-parse", "--short", "HEAD")
        if commit and git("status", "--porcelain", "--untracked-files=no"):
            commit += " (with uncommitted changes)"
        return commit or "unknown"
    return "unknown"
