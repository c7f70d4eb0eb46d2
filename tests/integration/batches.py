"""Shared by the client-feature tests (issue 7): submitting batches over HTTP, reading the
results back and looking at the PostgreSQL table directly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import httpx2
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine, text

from claimpay.keys import StoreKeys
from tests.integration.conftest import WorkerProcess
from tests.integration.namespaces import purge_namespace

__all__ = ["purge_namespace"]  # re-exported for the tests that import it from here

Headers = Callable[..., dict[str, str]]
Response = httpx.Response | httpx2.Response
"""An answer of the in-process API (`TestClient`: httpx2) or of a real server (httpx)."""
BATCH = "/claim-prompt-pays-batch"
LIST = "/claim-prompt-pays"


def put_batch(
    client: TestClient,
    rows: list[Any],
    headers: Mapping[str, str],
    params: Mapping[str, str | int] | None = None,
) -> httpx2.Response:
    """`PUT /claim-prompt-pays-batch` with `rows` as the JSON body."""
    return client.put(BATCH, content=json.dumps(rows), headers=dict(headers), params=params)


def accepted_job(response: Response) -> str:
    """The job ID of a 202 answer, checked against its `Location`."""
    assert response.status_code == 202, response.text
    job_id: str = response.json()["data"]["jobId"]
    assert response.headers["Location"] == f"/jobs/{job_id}"
    return job_id


def results(client: TestClient, job_id: str, headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """The whole 207 envelope's `data` of a completed job."""
    response = client.get(f"/jobs/{job_id}/results", headers=dict(headers))
    assert response.status_code == 207, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def statuses(items: list[dict[str, Any]]) -> list[int]:
    return [item["status"] for item in items]


def keys_of(items: list[dict[str, Any]]) -> list[Any]:
    return [item["id"][0]["value"] for item in items]


def table_rows(engine: Engine, first_key: int, last_key: int) -> dict[int, dict[str, Any]]:
    """Rows of `claim_prompt_pay` with keys `first_key..last_key`, read directly."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT * FROM claim_prompt_pay WHERE claim_prompt_pay_key BETWEEN :first AND :last"
            ),
            {"first": first_key, "last": last_key},
        ).mappings()
        return {row["claim_prompt_pay_key"]: dict(row) for row in found}


def ledger_entries(engine: Engine, job_id: str) -> int:
    """Ledger entries of a job's chunks, of every round (`<job>` and `<job>#<round>`)."""
    with engine.connect() as conn:
        count: int = conn.execute(
            text(
                "SELECT count(*) FROM claimpay_chunk_ledger "
                "WHERE job_id = :job OR job_id LIKE :rounds"
            ),
            {"job": job_id, "rounds": f"{job_id}#%"},
        ).scalar_one()
    return count


def redis_of(env: Mapping[str, str]) -> Redis:
    return Redis.from_url(env["CLAIMPAY_REDIS_URL"])


def jobs_created(env: Mapping[str, str], database: str) -> int:
    """How many jobs the deployment of `env` has stored for `database`."""
    redis = redis_of(env)
    try:
        return int(redis.zcard(StoreKeys(env["CLAIMPAY_KEY_PREFIX"]).jobs_of(database)))
    finally:
        redis.close()


@contextlib.contextmanager
def paused(worker: WorkerProcess) -> Iterator[None]:
    """The worker's whole process group stopped (SIGSTOP) inside the block: no job can
    make progress, whatever the machine's speed."""
    os.killpg(worker.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(worker.process.pid, signal.SIGCONT)


def with_api_key(env: Mapping[str, str], api_key: str) -> dict[str, str]:
    """`env` with one more API key allowed on every database: a caller whose per-key
    limits (rate, unfinished jobs) no other test touches."""
    keys = {**json.loads(env["CLAIMPAY_API_KEYS"]), api_key: ["*"]}
    return {**env, "CLAIMPAY_API_KEYS": json.dumps(keys)}


def unlimited_key(env: Mapping[str, str], api_key: str) -> dict[str, str]:
    """`with_api_key`, and no limit on unfinished jobs per key: idempotent replays count
    as jobs against that limit (a bug, see `test_idempotency.py`), so tests that replay
    a lot must neither be refused for it nor make a key other tests use look busy."""
    return {**with_api_key(env, api_key), "CLAIMPAY_MAX_ACTIVE_JOBS_PER_KEY": "0"}
