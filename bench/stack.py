"""The claimpay processes under test: a real `claimpay api` and `claimpay worker`, each in
a session (process group) of its own so that stopping one stops its children too."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.config import API_KEY, BenchConfig
from bench.signals import uninterruptible

STOP_GRACE_S = 15.0
READY_TIMEOUT_S = 60.0
RATE_LIMIT_PER_S = 100_000


class StackFailed(Exception):
    """Raised when a claimpay process fails to start, or exits while it is measured."""


@dataclass
class Service:
    """One started process (the leader of its own process group) and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def group_pids(self) -> list[int]:
        """Every live process of the group: the leader and, for the worker, its pool."""
        return process_group(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class Stack:
    """The API and the worker of one benchmark run, and the environment they share."""

    env: dict[str, str]
    workdir: Path
    services: dict[str, Service] = field(default_factory=dict)
    api_url: str = ""

    def run_cli(self, *args: str) -> str:
        """Run a `claimpay` command to completion with the stack's settings."""
        done = subprocess.run(
            _claimpay(*args), env=self.env, cwd=self.workdir, capture_output=True, check=False
        )
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise StackFailed(f"claimpay {' '.join(args)} failed: " + " | ".join(detail))
        return done.stdout.decode()

    def start(self, concurrency: int) -> None:
        """Start the API on a free port and a worker; return once the API answers."""
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self._spawn("api", _claimpay("api", "--port", str(port)))
        self._spawn("worker", _claimpay("worker", f"--concurrency={concurrency}"))
        self._wait_for_api()

    def check_alive(self) -> None:
        """`StackFailed`, with the end of its log, if a process has exited."""
        for service in self.services.values():
            code = service.process.poll()
            if code is not None:
                raise StackFailed(
                    f"{service.name} exited with {code}; end of its log:\n{service.log_tail()}"
                )

    def stop(self) -> None:
        """SIGTERM every group (the worker first), wait, then SIGKILL whatever is left."""
        with uninterruptible():
            self._stop()

    def _stop(self) -> None:
        services = list(reversed(self.services.values()))
        for service in services:
            _signal_group(service.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for service in services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(max(0.0, deadline - time.monotonic()))
        for service in services:
            _signal_group(service.process.pid, signal.SIGKILL)
            service.process.wait()

    def _spawn(self, name: str, argv: list[str]) -> None:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.services[name] = Service(name, process, log_path)

    def _wait_for_api(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api_url}/health/live", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise StackFailed(f"the API did not answer within {READY_TIMEOUT_S:g}s")


def stack_env(config: BenchConfig, databases: dict[str, str]) -> dict[str, str]:
    """The process environment with this run's `CLAIMPAY_*` settings (and no others)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMPAY_")}
    env.update(
        CLAIMPAY_REDIS_URL=config.redis_url,
        CLAIMPAY_DATABASES=json.dumps(databases),
        CLAIMPAY_API_KEYS=json.dumps({API_KEY: ["*"]}),
        CLAIMPAY_JWT_SECRET=config.jwt_secret,
        CLAIMPAY_KEY_PREFIX=config.key_prefix,
        CLAIMPAY_QUEUE=config.queue,
        # The per-key rate limiter stays on (its cost is part of every request) but high
        # enough that polling every millisecond is not throttled.
        CLAIMPAY_RATE_LIMIT_PER_S=str(RATE_LIMIT_PER_S),
        CLAIMPAY_RATE_LIMIT_BURST=str(RATE_LIMIT_PER_S),
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def stack_for(config: BenchConfig, databases: dict[str, str], workdir: Path) -> Iterator[Stack]:
    """A stack (not started yet) whose processes are stopped on exit, whatever happened
    (an error, Ctrl-C)."""
    stack = Stack(env=stack_env(config, databases), workdir=workdir)
    try:
        yield stack
    finally:
        stack.stop()


def process_group(pgid: int) -> list[int]:
    """The pids whose process group is `pgid` (from /proc/<pid>/stat)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return sorted(pids)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _claimpay(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
