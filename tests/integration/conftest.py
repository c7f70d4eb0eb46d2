"""Real servers: the machine's Redis and PostgreSQL, and a real Celery worker process."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from claimpay.messaging import fast_queue
from claimpay.settings import Settings
from producer.main import create_app
from tests.conftest import require_service
from tests.factories import API_KEY, JWT_SECRET, NARROW_KEY
from tests.integration.namespaces import purge_namespace
from worker.migrate import upgrade

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_HOST, PG_PORT = "127.0.0.1", 5432
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"


@pytest.fixture(scope="session")
def redis_url() -> str:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@contextlib.contextmanager
def scratch_postgres_database(prefix: str = "claimpay_it") -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards; yields its URL."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with scratch_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def stack_env(
    redis_url: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Environment of one isolated claimpay deployment on the shared Redis."""
    namespace = f"cpit{secrets.token_hex(4)}"
    sqlite_path = tmp_path_factory.mktemp("sqlite") / "demo.db"
    upgrade(f"sqlite:///{sqlite_path}")
    env = {
        "CLAIMPAY_REDIS_URL": redis_url,
        "CLAIMPAY_DATABASES": json.dumps({"acme": pg_url, "demo": f"sqlite:///{sqlite_path}"}),
        "CLAIMPAY_API_KEYS": json.dumps({API_KEY: ["*"], NARROW_KEY: ["demo"]}),
        "CLAIMPAY_JWT_SECRET": JWT_SECRET,
        "CLAIMPAY_KEY_PREFIX": namespace,
        "CLAIMPAY_QUEUE": namespace,
        "CLAIMPAY_CHUNK_SIZE": "500",
        "CLAIMPAY_MAX_RETRIES": "3",
        "CLAIMPAY_RETRY_BACKOFF_S": "0.2",
        "CLAIMPAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    yield env
    purge_namespace(env)


def stack_settings(env: dict[str, str]) -> Settings:
    """The settings the worker process reads from `env`, for the in-process API."""
    values = {
        key.removeprefix("CLAIMPAY_").lower(): json.loads(value) if value[:1] in "{[" else value
        for key, value in env.items()
    }
    return Settings.model_validate(values)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_worker(env: dict[str, str], log_path: Path, concurrency: int = 2) -> WorkerProcess:
    """`celery -A worker.celery_app worker`, exactly as an operator would start it."""
    celery = str(Path(sys.executable).parent / "celery")
    argv = [celery, "-A", "worker.celery_app", "worker", f"--concurrency={concurrency}"]
    queues = f"{env['CLAIMPAY_QUEUE']},{fast_queue(env['CLAIMPAY_QUEUE'])}"  # small jobs: .fast
    argv += ["--loglevel=INFO", f"--queues={queues}", "--without-gossip"]
    argv += ["--without-mingle", "-E"]
    handle = log_path.open("wb")
    process = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle.close()
    worker = WorkerProcess(process, log_path)
    deadline = time.monotonic() + 60
    while " ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_worker(worker)
            raise RuntimeError(f"worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.1)
    return worker


def stop_worker(worker: WorkerProcess, sig: signal.Signals = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, sig)
    try:
        worker.process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()


@pytest.fixture(scope="session")
def worker_process(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    worker = start_worker(stack_env, tmp_path_factory.mktemp("worker") / "worker.log")
    yield worker
    stop_worker(worker)


@pytest.fixture(scope="session")
def client(stack_env: dict[str, str], worker_process: WorkerProcess) -> Iterator[TestClient]:
    """The API in-process, on the real Redis, feeding the real worker."""
    with TestClient(create_app(stack_settings(stack_env)), raise_server_exceptions=False) as api:
        yield api


def wait_for_job(
    client: TestClient, job_id: str, headers: dict[str, str], timeout_s: float = 120
) -> dict[str, Any]:
    """Poll `GET /jobs/{id}` until the job is completed; returns its status data."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        if data["state"] == "completed":
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not completed after {timeout_s}s: {data}")
        time.sleep(0.1)


Submit = Callable[..., tuple[str, dict[str, Any]]]
