"""`claimpay api` as a real subprocess (uvicorn, one process), for tests that need a real
HTTP server: streamed request bodies, and the server's memory read from /proc."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.factories import API_KEY, JWT_SECRET
from tests.integration.namespaces import purge_namespace
from worker.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


@dataclass
class ApiProcess:
    """A running `claimpay api`; `base_url` is `http://127.0.0.1:<port>`."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def memory_kib(self, field: str) -> int:
        """A memory figure of the server process from /proc (`VmRSS`, `VmHWM`: the peak)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
        raise AssertionError(f"{field} not in /proc/{self.process.pid}/status")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def running_api(env: Mapping[str, str], log_path: Path) -> Iterator[ApiProcess]:
    """Start `python -m cli api --port <free port>` with `env`, wait until it answers
    `/health/live`, stop it afterwards."""
    port = free_port()
    argv = [sys.executable, "-m", "cli", "api", "--port", str(port)]
    with log_path.open("wb") as handle:
        process = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = ApiProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_until_live(api)
        yield api
    finally:
        _stop(process)


@contextlib.contextmanager
def sqlite_api(redis_url: str, workdir: Path, prefix: str, **settings: str) -> Iterator[ApiProcess]:
    """`running_api` on a fresh SQLite database `demo`, under its own Redis key prefix and
    queue (purged afterwards), with the test API key and JWT secret, and `settings`
    (`CLAIMPAY_...` variables) on top."""
    database = f"sqlite:///{workdir / 'demo.db'}"
    upgrade(database)
    env = {
        "CLAIMPAY_REDIS_URL": redis_url,
        "CLAIMPAY_DATABASES": json.dumps({"demo": database}),
        "CLAIMPAY_API_KEYS": json.dumps({API_KEY: ["*"]}),
        "CLAIMPAY_JWT_SECRET": JWT_SECRET,
        "CLAIMPAY_KEY_PREFIX": prefix,
        "CLAIMPAY_QUEUE": prefix,
        **settings,
    }
    try:
        with running_api(env, workdir / "api.log") as api:
            yield api
    finally:
        purge_namespace(env)


def _wait_until_live(api: ApiProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if api.process.poll() is not None:
            raise RuntimeError(f"claimpay api exited:\n{api.log()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api.base_url}/health/live", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"claimpay api did not start:\n{api.log()[-3000:]}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
