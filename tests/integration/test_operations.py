"""Operations on real servers: Flower over HTTP, /metrics of the API and of a worker node,
readiness when Redis stops, worker liveness, queues and the job listing.

The module runs its own deployment (key prefix and queues of its own) with one worker
whose metrics are on, so every counter it reads moves only by the jobs it submits.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from claimpay.jobstore import JobStore
from cli.devstack import find_redis_server, free_port, wait_for_port
from producer.main import create_app
from tests.factories import make_row
from tests.integration.conftest import (
    WorkerProcess,
    stack_settings,
    start_worker,
    stop_worker,
    wait_for_job,
)
from tests.integration.namespaces import purge_namespace

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

Headers = Callable[..., dict[str, str]]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
BATCH = "/claim-prompt-pays-batch"
FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-" + secrets.token_hex(8)
ROW_MARKER = "ZQXROW"
"""A value only the rows carry: it must never show in Flower or in metrics."""


@pytest.fixture(scope="module")
def ops_env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    namespace = f"cpops{secrets.token_hex(4)}"
    env = {
        **stack_env,
        "CLAIMPAY_KEY_PREFIX": namespace,
        "CLAIMPAY_QUEUE": namespace,
        "CLAIMPAY_WORKER_METRICS_PORT": str(free_port()),
        "CLAIMPAY_FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
        "CLAIMPAY_LOG_FORMAT": "json",
        # A node name of its own: other test workers on this host are `celery@<host>` too.
        "CELERY_WORKER_HOSTNAME": f"{namespace}@{socket.gethostname()}",
    }
    yield env
    purge_namespace(env)


@pytest.fixture(scope="module")
def ops_worker(
    ops_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    worker = start_worker(ops_env, tmp_path_factory.mktemp("ops-worker") / "worker.log")
    yield worker
    stop_worker(worker)


@pytest.fixture(scope="module")
def flower_url(
    ops_env: dict[str, str], ops_worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`claimpay flower` with basic auth from settings, before any job is submitted."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("flower") / "flower.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "flower", "--port", str(port)],
            env={**os.environ, **ops_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, 60, process)
        url = f"http://127.0.0.1:{port}"
        # Flower only knows the events it receives: wait until its receiver has heard
        # the worker's heartbeat, or a job finished meanwhile would never show up.
        eventually(lambda: _flower_hears_a_worker(url), timeout_s=60)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _flower_hears_a_worker(url: str) -> None:
    listed = httpx.get(
        f"{url}/workers", params={"json": 1}, auth=(FLOWER_USER, FLOWER_PASSWORD), timeout=10
    )
    assert listed.status_code == 200, listed.status_code
    assert any(worker.get("status") for worker in listed.json()["data"]), listed.text


@pytest.fixture(scope="module")
def ops_client(
    ops_env: dict[str, str], ops_worker: WorkerProcess, flower_url: str
) -> Iterator[TestClient]:
    with TestClient(create_app(stack_settings(ops_env)), raise_server_exceptions=False) as api:
        yield api


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def worker_metrics(env: dict[str, str]) -> Samples:
    port = env["CLAIMPAY_WORKER_METRICS_PORT"]
    return samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def submit(client: TestClient, rows: list[Any], headers: dict[str, str]) -> str:
    response = client.put(BATCH, content=json.dumps(rows), headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["data"]["jobId"]
    return job_id


def eventually(check: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def test_flower_lists_the_worker_and_the_job_chunks_without_row_data(
    ops_client: TestClient, ops_env: dict[str, str], flower_url: str, auth_headers: Headers
) -> None:
    headers = auth_headers(database="demo")
    rows = [make_row(880_001 + i, group_ID=ROW_MARKER, tax_ID="987650001") for i in range(3)]
    job_id = submit(ops_client, rows, headers)
    wait_for_job(ops_client, job_id, headers)
    auth = (FLOWER_USER, FLOWER_PASSWORD)
    with httpx.Client(base_url=flower_url, auth=auth, timeout=20) as flower:
        assert httpx.get(f"{flower_url}/api/workers", timeout=20).status_code == 401

        def job_tasks() -> list[dict[str, Any]]:
            listed = flower.get("/api/tasks", params={"limit": 5000}).json()
            found = [task for task in listed.values() if job_id in str(task.get("args"))]
            assert found, "no task of the job in Flower yet"
            assert all(task["state"] == "SUCCESS" for task in found), found
            return found

        tasks = eventually(job_tasks)
        workers = flower.get("/api/workers", params={"refresh": "true"}).json()
    assert [task["name"] for task in tasks] == ["claimpay.apply_chunk"]
    assert tasks[0]["args"] == f"(job={job_id}, chunk=0, rows=3)"
    shown = json.dumps(tasks)
    for value in (ROW_MARKER, "987650001", "880001", "880002"):
        assert value not in shown
    node = ops_env["CELERY_WORKER_HOSTNAME"]
    assert node in workers, sorted(workers)
    queue = ops_env["CLAIMPAY_QUEUE"]
    consumed = {q["name"] for q in workers[node].get("active_queues") or ()}
    assert consumed == {queue, f"{queue}.fast"}
    assert tasks[0]["worker"] == node


def test_metrics_move_by_the_amounts_of_a_known_job(
    ops_client: TestClient, ops_env: dict[str, str], auth_headers: Headers
) -> None:
    api_before = samples(ops_client.get("/metrics").text)
    worker_before = worker_metrics(ops_env)
    headers = auth_headers(database="acme")
    key = 890_000 + secrets.randbelow(9_000) * 10
    rows = [make_row(key), make_row(key + 1), make_row(key + 2), {"claimPromptPay_Key": "x"}]
    job_id = submit(ops_client, rows, headers)
    status = wait_for_job(ops_client, job_id, headers)
    assert (status["created"], status["failed"]) == (3, 1)

    api_after = samples(ops_client.get("/metrics").text)
    assert delta(api_after, api_before, "claimpay_jobs_submitted_total") == 1
    assert delta(api_after, api_before, "claimpay_rows_submitted_total") == 4
    assert delta(api_after, api_before, "claimpay_jobs_finished_total", state="completed") == 1
    assert delta(api_after, api_before, "claimpay_rows_total", outcome="created") == 3
    assert delta(api_after, api_before, "claimpay_rows_total", outcome="failed") == 1
    assert delta(api_after, api_before, "claimpay_rows_total", outcome="updated") == 0
    assert delta(api_after, api_before, "claimpay_job_rows_count") == 1
    assert delta(api_after, api_before, "claimpay_job_rows_sum") == 4
    assert delta(api_after, api_before, "claimpay_job_duration_seconds_count") == 1
    accepted = {"method": "PUT", "route": BATCH, "status": "202"}
    assert delta(api_after, api_before, "claimpay_http_requests_total", **accepted) == 1

    def worker_moved() -> Samples:
        after = worker_metrics(ops_env)
        rows_of = "claimpay_worker_rows_total"
        assert delta(after, worker_before, rows_of, database="acme", outcome="created") == 3
        return after

    worker_after = eventually(worker_moved)
    moved = delta(worker_after, worker_before, "claimpay_worker_rows_total",
                  database="acme", outcome="invalid")  # fmt: skip
    assert moved == 1
    assert delta(worker_after, worker_before, "claimpay_worker_chunks_total", database="acme") == 1
    tasks = delta(worker_after, worker_before, "claimpay_worker_chunk_tasks_total",
                  state="succeeded")  # fmt: skip
    assert tasks == 1
    latency = delta(worker_after, worker_before, "claimpay_worker_chunk_duration_seconds_count",
                    database="acme")  # fmt: skip
    assert latency == 1
    text = (
        ops_client.get("/metrics").text
        + httpx.get(
            f"http://127.0.0.1:{ops_env['CLAIMPAY_WORKER_METRICS_PORT']}/metrics", timeout=10
        ).text
    )
    assert job_id not in text
    assert str(key) not in text


def test_small_jobs_take_the_fast_queue_and_large_ones_the_main_queue(
    ops_client: TestClient, ops_env: dict[str, str], auth_headers: Headers
) -> None:
    headers = auth_headers(database="demo")
    small = submit(ops_client, [make_row(870_001)], headers)
    large = submit(ops_client, [make_row(860_000 + i) for i in range(1_001)], headers)
    for job_id in (small, large):
        wait_for_job(ops_client, job_id, headers)
    store = ops_client.app.state.services.store  # type: ignore[attr-defined]
    queue = ops_env["CLAIMPAY_QUEUE"]
    assert store.meta(small).queue == f"{queue}.fast"
    assert store.meta(large).queue == queue


def test_listing_shows_this_deployments_jobs_newest_first(
    ops_client: TestClient, auth_headers: Headers
) -> None:
    headers = auth_headers(database="demo")
    first = submit(ops_client, [make_row(850_001)], headers)
    second = submit(ops_client, [make_row(850_002)], headers)
    wait_for_job(ops_client, second, headers)
    response = ops_client.get("/jobs?pageSize=2", headers=headers)
    assert response.status_code == 200
    assert [job["jobId"] for job in response.json()["data"]] == [second, first]
    pagination = json.loads(response.headers["x-pagination"])
    assert pagination["PageSize"] == 2
    assert pagination["TotalCount"] >= 2


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_worker_health_answers_for_live_nodes_only(
    ops_env: dict[str, str], ops_worker: WorkerProcess
) -> None:
    node = ops_env["CELERY_WORKER_HOSTNAME"]
    alive = run_cli(ops_env, "worker-health", "--any", "--timeout-s", "5")
    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert alive.stdout.strip() == f"ok: {node}"
    pinged = run_cli(ops_env, "worker-health", "--node", node, "--timeout-s", "5")
    assert pinged.returncode == 0, pinged.stdout + pinged.stderr
    gone = run_cli(ops_env, "worker-health", "--node", "celery@no-such-node", "--timeout-s", "1")
    assert gone.returncode == 1
    assert "no answer" in gone.stdout


def test_worker_health_checks_this_hosts_nodes_and_fails_for_a_stuck_pool(
    ops_env: dict[str, str], ops_worker: WorkerProcess
) -> None:
    node = ops_env["CELERY_WORKER_HOSTNAME"]
    local = run_cli(ops_env, "worker-health", "--timeout-s", "3")
    assert local.returncode == 0, local.stdout + local.stderr
    assert node in local.stdout.strip().split("ok: ", 1)[1].split(", ")
    redis = Redis.from_url(ops_env["CLAIMPAY_REDIS_URL"])
    store = JobStore(redis, prefix=ops_env["CLAIMPAY_KEY_PREFIX"], ttl_s=600)
    try:
        # What a pool process's lease keeper writes once a database call outlives its bound.
        store.mark_stalled(node, "host:1:stuck", 30)
        stuck = run_cli(ops_env, "worker-health", "--node", node, "--timeout-s", "5")
        assert stuck.returncode == 1, stuck.stdout
        assert stuck.stdout.startswith(f"stuck: {node}")
        store.clear_stalled(node, "host:1:stuck")
        healed = run_cli(ops_env, "worker-health", "--node", node, "--timeout-s", "5")
        assert healed.returncode == 0, healed.stdout
    finally:
        redis.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, on a free port: stopping it harms nobody."""
    port = free_port()
    process = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, 15, process)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_ready_turns_503_naming_redis_when_redis_stops(
    ops_env: dict[str, str], own_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, redis_server = own_redis
    settings = stack_settings({**ops_env, "CLAIMPAY_REDIS_URL": url})
    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        ready = api.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["data"]["checks"]) == {"redis", "database:acme", "database:demo"}

        redis_server.terminate()
        redis_server.wait(15)
        # An answer is reused for CLAIMPAY_READINESS_CACHE_S (1 s): the next run sees it.
        deadline = time.monotonic() + 10
        while True:
            started = time.monotonic()
            not_ready = api.get("/health/ready")
            assert time.monotonic() - started < 10, "a probe must answer fast"
            if not_ready.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert api.get("/health/live").status_code == 200
        metrics = samples(api.get("/metrics").text)
    assert not_ready.status_code == 503
    body = not_ready.json()
    assert body["error"]["detail"].startswith("redis: unreachable")
    assert body["data"]["checks"]["database:acme"]["ok"]
    assert body["data"]["checks"]["database:demo"]["ok"]
    assert metrics[("claimpay_job_store_up", ())] == 0
