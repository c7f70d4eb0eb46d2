"""`claimpay dev` as a process for end-to-end tests: started as a user starts it, its
banner read as a user reads it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path


def dev_argv(api_port: int, flower_port: int) -> list[str]:
    """`claimpay dev` on these ports, run by this interpreter."""
    return [sys.executable, "-m", "cli", "dev", "--api-port", str(api_port),
            "--flower-port", str(flower_port)]  # fmt: skip


def clean_env() -> dict[str, str]:
    """The environment without any `CLAIMPAY_` setting: the defaults a new user has."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CLAIMPAY_")}


def start_dev(
    where: Path, api_port: int, flower_port: int, log_name: str = "dev.log"
) -> tuple[subprocess.Popen[bytes], Path]:
    """`claimpay dev` in `where`, as a user runs it, its output in `where/log_name`, once
    its banner is out."""
    log = where / log_name
    with log.open("wb") as handle:
        process = subprocess.Popen(
            dev_argv(api_port, flower_port),
            cwd=where,
            env=clean_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while "Press Ctrl-C to stop everything" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise AssertionError(f"claimpay dev did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    return process, log


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a user stops it: its children run in sessions of their own, so a kill of
    `claimpay dev` alone would leave them running. Killed only if it does not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def the_cli_environment(banner: str) -> dict[str, str]:
    """The environment after pasting the banner's `export` line."""
    line = next(line.strip() for line in banner.splitlines() if line.strip().startswith("export "))
    values = dict(word.split("=", 1) for word in shlex.split(line)[1:])
    assert set(values) == {"CLAIMPAY_URL", "CLAIMPAY_API_KEY", "CLAIMPAY_TOKEN"}
    return {**clean_env(), **values}
