"""The pieces of `claimpay dev`: port checks, the persistent Redis, the stop order, the
banner that connects the CLI."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cli import devstack
from cli.devbanner import SAMPLE_FILE, DevStack, banner
from tests.factories import make_settings


def test_a_listening_port_is_busy_and_named() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert devstack.port_in_use(port)
        with pytest.raises(devstack.DevStackError, match=f"port {port} \\(the API\\) is in use"):
            devstack.check_ports({"Flower": devstack.free_port(), "the API": port})
    assert not devstack.port_in_use(port)
    devstack.check_ports({"the API": port})


def test_the_embedded_redis_appends_every_write_to_a_file_under_var(tmp_path: Path) -> None:
    argv = devstack.redis_argv(6399, tmp_path / "var" / "redis")
    options = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert options["--appendonly"] == "yes"
    assert options["--dir"] == str((tmp_path / "var" / "redis").resolve())
    assert options["--bind"] == "127.0.0.1"
    assert (tmp_path / "var" / "redis").is_dir()


CHILD = """
import os, signal, sys, time
def stop(*_):
    time.sleep(0.3)  # a worker finishing its chunk
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(60)
"""
LAST = """
import os, signal, sys, time
def stop(*_):
    try:
        os.kill(int(sys.argv[1]), 0)
        seen = "the other child was still running"
    except ProcessLookupError:
        seen = "the other child had stopped"
    open(sys.argv[2], "w").write(seen)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(60)
"""


def test_stop_ends_the_others_before_the_one_marked_last(tmp_path: Path) -> None:
    group = devstack.ProcessGroup(tmp_path / "logs")
    report = tmp_path / "seen"
    worker = group.start("worker", [sys.executable, "-c", CHILD], {})
    pid = str(worker.process.pid)
    group.start("redis", [sys.executable, "-c", LAST, pid, str(report)], {}, last=True)
    group.start("api", [sys.executable, "-c", CHILD], {})
    for child in group.children:  # their SIGTERM handlers are in place
        assert devstack.wait_for_line(child, "ready", 30)
    group.stop()
    assert report.read_text() == "the other child had stopped"
    assert all(child.process.returncode == 0 for child in group.children)  # none killed
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "api.log", "redis.log", "worker.log",
    ]  # fmt: skip


def test_one_var_dir_serves_one_stack(tmp_path: Path) -> None:
    with devstack.var_dir_lock(tmp_path):
        other = subprocess.run(
            [sys.executable, "-c", "from pathlib import Path; from cli import devstack\n"
             f"with devstack.var_dir_lock(Path({str(tmp_path)!r})): pass"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert "another `claimpay dev` is running" in other.stderr
    with devstack.var_dir_lock(tmp_path):  # free again once the first one is done
        pass


def test_the_banner_connects_the_cli(tmp_path: Path) -> None:
    settings = make_settings(
        databases={"demo": f"sqlite:///{tmp_path}/demo.db"}, worker_metrics_port=9808
    )
    stack = DevStack(
        settings=settings,
        api_port=8123,
        flower_port=5556,
        api_key="dev-key",
        bearer="a.b.c",
        logs_dir=tmp_path / "var" / "logs",
        redis_dir=tmp_path / "var" / "redis",
        secrets_file=tmp_path / "var" / "dev-secrets.json",
    )
    text = banner(stack)
    export = next(line.split() for line in text.splitlines() if "export " in line)
    assert export[1:] == [
        "CLAIMPAY_URL=http://127.0.0.1:8123", "CLAIMPAY_API_KEY=dev-key", "CLAIMPAY_TOKEN=a.b.c",
    ]  # fmt: skip
    submit = next(shlex.split(line) for line in text.splitlines() if " submit " in line)
    assert Path(submit[submit.index("submit") + 1]).resolve() == SAMPLE_FILE
    assert submit[-3:] == ["--database", "demo", "--wait"]
    assert SAMPLE_FILE.read_text().count("\n") == 10  # a header and nine rows
    for where in ("demo.db (SQLite)", "redis/ (append-only file", "logs/ (api, worker"):
        assert where in text
