"""`claimpay dev` as a user runs it: embedded Redis and SQLite, real HTTP, clean Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.devstack import free_port
from tests.conftest import port_open
from tests.factories import make_row

pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int, int]]:
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMPAY_")}
    log = tmp_path / "dev.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "dev", "--api-port", str(api_port),
             "--flower-port", str(flower_port)],
            cwd=tmp_path,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "claimpay dev is running" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, "claimpay dev did not start in 90 s"
            time.sleep(0.2)
        yield process, log, api_port, flower_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_dev_stack_serves_a_batch_and_stops_cleanly(
    dev_stack: tuple[subprocess.Popen[bytes], Path, int, int],
) -> None:
    process, log, api_port, flower_port = dev_stack
    banner = log.read_text()
    api_key = re.search(r"x-api-key: ([^']+)'", banner)
    bearer = re.search(r"Authorization: Bearer ([^']+)'", banner)
    assert api_key, banner
    assert bearer, banner
    headers = {
        "x-api-key": api_key.group(1),
        "Authorization": f"Bearer {bearer.group(1)}",
        "vbasoftware-database": "demo",
    }
    base = f"http://127.0.0.1:{api_port}"
    rows = [make_row(1), make_row(2), make_row(1, plan_ID="HMO"), {"claimPromptPay_Key": "one"}]
    with httpx.Client(base_url=base, timeout=10) as http:
        accepted = http.put("/claim-prompt-pays-batch", json=rows, headers=headers)
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["data"]["jobId"]
        deadline = time.monotonic() + 60
        while http.get(f"/jobs/{job_id}", headers=headers).json()["data"]["state"] != "completed":
            assert time.monotonic() < deadline, "job did not complete"
            time.sleep(0.1)
        results = http.get(f"/jobs/{job_id}/results", headers=headers)
    assert results.status_code == 207
    assert [item["status"] for item in results.json()["data"]] == [201, 201, 200, 400]
    assert httpx.get(f"http://127.0.0.1:{flower_port}/", timeout=10).status_code in (200, 302)
    assert (Path(log.parent) / "var" / "demo.db").exists()
    assert_operations_are_where_the_banner_says(banner, base)

    started = descendants(process.pid)
    assert len(started) >= 4  # redis, api, worker (+ its pool), flower
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    time.sleep(0.5)
    assert [pid for pid in started if alive(pid)] == []
    assert not port_open("127.0.0.1", api_port)
    assert not port_open("127.0.0.1", flower_port)


def assert_operations_are_where_the_banner_says(banner: str, base: str) -> None:
    """The banner names /docs, /metrics (API and worker), readiness and Flower; all answer,
    and the dev stack logs for people, not as JSON."""
    assert f"{base}/docs" in banner
    assert f"{base}/metrics" in banner
    assert f"{base}/health/ready" in banner
    worker_metrics = re.search(r"worker: (http://127\.0\.0\.1:\d+/metrics)", banner)
    assert worker_metrics, banner
    assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 200
    api_metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'claimpay_jobs_finished_total{state="completed"} 1.0' in api_metrics
    deadline = time.monotonic() + 30
    while "claimpay_worker_rows_total" not in httpx.get(worker_metrics[1], timeout=10).text:
        assert time.monotonic() < deadline, "the worker's metrics never showed its rows"
        time.sleep(0.2)
    assert not re.search(r'^\{"ts":', banner, re.MULTILINE), "claimpay dev logs text"
