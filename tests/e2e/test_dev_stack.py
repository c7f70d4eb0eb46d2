"""`claimpay dev` as a user runs it: embedded Redis and SQLite, real HTTP, clean Ctrl-C."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.devstack import free_port
from tests.conftest import port_open
from tests.e2e.devprocess import clean_env, dev_argv, start_dev, stop, the_cli_environment
from tests.factories import make_row, make_rows

pytestmark = pytest.mark.e2e
BIG_ROWS = 100_000
"""Rows of the job running when Ctrl-C comes: 200 chunks, several seconds of work."""


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
    process, log = start_dev(tmp_path, api_port, flower_port)
    try:
        yield process, log, api_port, flower_port
    finally:
        stop(process)


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
    assert_operations_are_where_the_banner_says(banner, base, log.parent)

    started = descendants(process.pid)
    assert len(started) >= 4  # redis, api, worker (+ its pool), flower
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    time.sleep(0.5)
    assert [pid for pid in started if alive(pid)] == []
    assert not port_open("127.0.0.1", api_port)
    assert not port_open("127.0.0.1", flower_port)


def assert_operations_are_where_the_banner_says(banner: str, base: str, where: Path) -> None:
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
    api_log = where / "var" / "logs" / "api.log"
    assert "Uvicorn running" in api_log.read_text()  # the API's output: in its log file
    assert not re.search(r'^\{"ts":', api_log.read_text(), re.MULTILINE), "dev logs text"


def test_a_busy_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            dev_argv(free_port(), port),
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"port {port} (Flower, --flower-port) is in use" in done.stderr
    assert done.stdout == ""  # no banner, no migration: nothing ran
    assert not (tmp_path / "var").exists()


def wait_for(http: httpx.Client, job_id: str, timeout_s: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        status: dict[str, object] = http.get(f"/jobs/{job_id}").json()["data"]
        if status["state"] == "completed":
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def api_client(env: dict[str, str]) -> httpx.Client:
    headers = {
        "x-api-key": env["CLAIMPAY_API_KEY"],
        "Authorization": f"Bearer {env['CLAIMPAY_TOKEN']}",
    }
    return httpx.Client(base_url=env["CLAIMPAY_URL"], headers=headers, timeout=30)


def logs_since_start(where: Path) -> dict[str, str]:
    """Each process's log, since the last start of the stack."""
    return {
        path.name: path.read_text(errors="replace").rsplit("---- claimpay dev started", 1)[-1]
        for path in (where / "var" / "logs").glob("*.log")
    }


def test_the_banner_connects_the_cli_and_a_restart_keeps_jobs(tmp_path: Path) -> None:
    api_port, flower_port = free_port(), free_port()
    process, log = start_dev(tmp_path, api_port, flower_port)
    try:
        banner = log.read_text()
        env = the_cli_environment(banner)
        # The banner's `claimpay submit` line, pasted as is: the sample file ships with us.
        submit = next(line.strip() for line in banner.splitlines() if " submit " in line)
        done = subprocess.run(
            shlex.split(submit), cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        sample_job = re.findall(r"Job ([0-9a-f]{32}) accepted", done.stdout)[0]
        # A second stack on the same var/ is refused, naming the cause.
        second = subprocess.run(
            dev_argv(free_port(), free_port()), cwd=tmp_path, env=clean_env(),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert second.returncode == 1
        assert "another `claimpay dev` is running" in second.stderr
        with api_client(env) as http:
            sample = wait_for(http, sample_job, 30)
            assert (sample["created"], sample["failed"]) == (5, 4)
            big = http.put(
                "/claim-prompt-pays-batch",
                params={"chunkSize": 500},
                json=make_rows(BIG_ROWS, first_key=10_000),
                headers={"vbasoftware-database": "demo"},
            )
            assert big.status_code == 202, big.text
            big_job = big.json()["data"]["jobId"]
            deadline = time.monotonic() + 60
            while (state := http.get(f"/jobs/{big_job}").json()["data"])["processed"] == 0:
                assert time.monotonic() < deadline, "the worker never started the job"
                time.sleep(0.05)
        # Ctrl-C while the big job runs: a few lines, no traceback, workers before Redis.
        assert state["state"] == "running", state
        before = len(log.read_text().splitlines())
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
        said = log.read_text().splitlines()[before:]
        assert 1 <= len(said) <= 3, said
        assert not any("Traceback" in line for line in said)
        for name, text in logs_since_start(tmp_path).items():
            assert "Traceback" not in text, f"{name}:\n{text[-3000:]}"
    finally:
        stop(process)

    # Started again (same ports, same var/): the earlier jobs still answer.
    process, log = start_dev(tmp_path, api_port, flower_port, "dev-again.log")
    try:
        banner = log.read_text()
        assert "var/redis/ (append-only file" in banner
        with api_client(the_cli_environment(banner)) as http:
            assert wait_for(http, sample_job, 10)["created"] == 5
            results = http.get(f"/jobs/{sample_job}/results")
            assert results.status_code == 207
            assert [item["status"] for item in results.json()["data"]] == [
                201, 201, 201, 400, 400, 400, 201, 400, 201,
            ]  # fmt: skip
            finished = wait_for(http, big_job, 180)  # the interrupted job ends after all
            assert (finished["processed"], finished["failed"]) == (BIG_ROWS, 0)
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        stop(process)
