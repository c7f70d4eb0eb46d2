"""One isolated claimpay deployment per fault test: real Redis, PostgreSQL, worker processes.

The API runs in-process (`TestClient`); workers are `celery -A worker.celery_app worker`
subprocesses in their own process groups. Every wait is bounded and, when it fails, says
what it waited for and shows the tail of the worker logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine

from claimpay.jobstore import JobStore
from claimpay.settings import Settings
from producer.main import create_app
from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET
from tests.integration.conftest import WorkerProcess, stack_settings, start_worker

BATCH = "/claim-prompt-pays-batch"
POLL_S = 0.05

RECOVERY_ENV = {
    "CLAIMPAY_CHUNK_SIZE": "500",
    "CLAIMPAY_LEASE_TTL_S": "4",
    "CLAIMPAY_SWEEP_INTERVAL_S": "1",
    "CLAIMPAY_STUCK_AFTER_S": "5",
    "CLAIMPAY_DB_STATEMENT_TIMEOUT_S": "30",
}
"""Short recovery settings, so a fault heals in seconds rather than minutes."""


class WaitTimeout(AssertionError):
    """Raised when a bounded wait of a fault test runs out."""


@dataclass
class FaultStack:
    """A deployment under one key prefix and queue (`namespace`), on its own database."""

    namespace: str
    env: dict[str, str]
    engine: Engine
    """The scratch database, reached directly (not through any proxy): for checks."""
    redis: Redis
    workdir: Path
    api: TestClient | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return stack_settings(self.env)

    @property
    def store(self) -> JobStore:
        return JobStore(self.redis, prefix=self.namespace, ttl_s=self.settings.result_ttl_s)

    @property
    def client(self) -> TestClient:
        assert self.api is not None, "the stack's API is not open"
        return self.api

    # -- workers ----------------------------------------------------------------------

    def start_worker(self, concurrency: int = 1) -> WorkerProcess:
        """Start a worker and wait until it says it is ready."""
        log_path = self.workdir / f"worker-{len(self.workers) + 1}.log"
        worker = start_worker(self.env, log_path, concurrency)
        self.workers.append(worker)
        return worker

    def signal_worker(self, worker: WorkerProcess, sig: signal.Signals, group: bool) -> None:
        """Send `sig` to the worker's main process, or to its whole process group."""
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(worker.process.pid, sig)
            else:
                os.kill(worker.process.pid, sig)

    def wait_exit(self, worker: WorkerProcess, timeout_s: float) -> int:
        try:
            return worker.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(
                f"worker {worker.process.pid} still running after {timeout_s}s\n{self.log_tail()}"
            ) from None

    def kill_worker(self, worker: WorkerProcess) -> None:
        """`kill -9` the worker's whole process group (main process and pool children)."""
        self.signal_worker(worker, signal.SIGKILL, group=True)
        self.wait_exit(worker, 10)

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                self.signal_worker(worker, signal.SIGKILL, group=True)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(10)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the latest worker logs, for failure messages."""
        parts = []
        for worker in self.workers[-2:]:
            text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
            parts.append(f"--- {worker.log_path.name} (pid {worker.process.pid}) ---\n")
            parts.append(text[-chars:])
        return "".join(parts) or "(no worker started)"

    # -- the API ----------------------------------------------------------------------

    def headers(self, database: str = "acme") -> dict[str, str]:
        token = mint_token(JWT_SECRET, "faults", 600)
        return {
            "x-api-key": API_KEY,
            "Authorization": f"Bearer {token}",
            "vbasoftware-database": database,
        }

    def submit(self, rows: list[dict[str, Any]], database: str = "acme") -> str:
        """`PUT` the batch; returns the job ID of the 202."""
        response = self.client.put(
            BATCH, content=orjson.dumps(rows), headers=self.headers(database)
        )
        assert response.status_code == 202, response.text
        job_id: str = response.json()["data"]["jobId"]
        return job_id

    def status(self, job_id: str, database: str = "acme") -> dict[str, Any] | None:
        """`GET /jobs/{id}` data, or None while the job store answers 503 (Redis down)."""
        response = self.client.get(f"/jobs/{job_id}", headers=self.headers(database))
        if response.status_code == 503:
            return None
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def wait_for_state(
        self, job_id: str, states: set[str], timeout_s: float, database: str = "acme"
    ) -> dict[str, Any]:
        """Poll the job until its state is one of `states`; returns its status data."""
        last: dict[str, Any] | None = None

        def reached() -> bool:
            nonlocal last
            last = self.status(job_id, database) or last
            return last is not None and last["state"] in states

        self.wait_until(reached, timeout_s, lambda: f"job {job_id} in {sorted(states)}: {last}")
        assert last is not None
        return last

    def results(self, job_id: str, database: str = "acme") -> list[dict[str, Any]]:
        """The whole 207 envelope's `data`."""
        response = self.client.get(f"/jobs/{job_id}/results", headers=self.headers(database))
        assert response.status_code == 207, response.text[:500]
        body = response.json()
        assert body["error"] is None
        items: list[dict[str, Any]] = body["data"]
        return items

    # -- Redis views --------------------------------------------------------------------

    def chunk_set(self, job_id: str, which: str) -> set[int]:
        """`started` or `done` chunk numbers of the job, straight from the job store."""
        keys = self.store.keys(job_id)
        key = keys.started if which == "started" else keys.done
        return {int(member) for member in self.redis.smembers(key)}

    def deliveries(self, job_id: str) -> dict[int, int]:
        raw = self.redis.hgetall(self.store.keys(job_id).deliveries)
        return {int(chunk): int(count) for chunk, count in raw.items()}

    def wait_for_done(self, job_id: str, count: int, timeout_s: float) -> float:
        """Wait until at least `count` chunks of the job are recorded."""
        return self.wait_until(
            lambda: len(self.chunk_set(job_id, "done")) >= count,
            timeout_s,
            lambda: f"job {job_id} to record {count} chunks ({self.store.meta(job_id)})",
        )

    # -- waiting ------------------------------------------------------------------------

    def wait_until(
        self, predicate: Callable[[], bool], timeout_s: float, what: Callable[[], str]
    ) -> float:
        """Poll `predicate` until true; returns the seconds it took. Redis being down
        meanwhile counts as "not yet"."""
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            try:
                if predicate():
                    return time.monotonic() - started
            except RedisError:
                pass
            if time.monotonic() > deadline:
                raise WaitTimeout(f"waited {timeout_s}s for {what()}\n{self.log_tail()}")
            time.sleep(POLL_S)


def build_env(
    namespace: str, redis_url: str, databases: dict[str, str], overrides: dict[str, str]
) -> dict[str, str]:
    """The `CLAIMPAY_*` environment of one fault-test deployment."""
    env = {
        "CLAIMPAY_REDIS_URL": redis_url,
        "CLAIMPAY_DATABASES": json.dumps(databases),
        "CLAIMPAY_API_KEYS": json.dumps({API_KEY: ["*"]}),
        "CLAIMPAY_JWT_SECRET": JWT_SECRET,
        "CLAIMPAY_KEY_PREFIX": namespace,
        "CLAIMPAY_QUEUE": namespace,
        **RECOVERY_ENV,
    }
    env.update(overrides)
    return env


def purge_namespace(redis: Redis, namespace: str) -> None:
    """Delete the deployment's keys, its queue, and the broker's unacknowledged copies of
    its messages (kombu keeps them in the shared `unacked` hash; left there, another
    deployment's worker would restore them into our queue an hour later)."""
    doomed = list(redis.scan_iter(match=f"{namespace}*", count=1000))
    doomed.append(f"_kombu.binding.{namespace}")
    redis.delete(*doomed)
    tags = []
    for tag, value in redis.hscan_iter("unacked"):
        with contextlib.suppress(ValueError, TypeError, IndexError, AttributeError):
            _, exchange, routing_key = json.loads(value)
            if any(str(name).startswith(namespace) for name in (exchange, routing_key)):
                tags.append(tag)
    if tags:
        redis.hdel("unacked", *tags)
        redis.zrem("unacked_index", *tags)


@contextlib.contextmanager
def open_api(stack: FaultStack) -> Iterator[TestClient]:
    """The API in-process on the stack's settings, feeding its workers."""
    with TestClient(create_app(stack.settings), raise_server_exceptions=False) as api:
        stack.api = api
        try:
            yield api
        finally:
            stack.api = None
