"""After a batch through the real stack: no row value, API key, token or secret in the
worker's log, the API's log records, or the Celery task messages stored in Redis (what
Flower shows of a task is what its message carries: name, ID and `argsrepr`)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any, cast

import orjson
import pytest
from fastapi.testclient import TestClient
from redis import Redis

from claimpay.logs import JsonFormatter
from claimpay.messaging import fast_queue
from producer.main import create_app
from tests.factories import API_KEY, JWT_SECRET, make_row, make_rows
from tests.integration.conftest import WorkerProcess, stack_settings, wait_for_job

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"
CANARIES = ("CANARYTAX5150", "CANARYGRP42", "canary-entry-user", "CANARYDIV9")


def canary_batch(count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = make_rows(count, first_key=770_000)
    rows[0] = make_row(770_000, tax_ID=CANARIES[0], group_ID=CANARIES[1], entry_User=CANARIES[2])
    rows[1] = make_row(770_001, prompt_Pay_Duration_Type=CANARIES[3])  # a 400 row result
    rows[-1] = make_row(770_000 + count - 1, division_ID=CANARIES[3])
    return rows


def leaks(text: str, headers: dict[str, str]) -> list[str]:
    secrets = {
        "API key": API_KEY,
        "JWT secret": JWT_SECRET,
        "bearer token": headers["Authorization"].removeprefix("Bearer "),
    }
    found = [canary for canary in CANARIES if canary in text]
    return found + [name for name, value in secrets.items() if value in text]


def test_logs_carry_no_row_values_and_no_secrets(
    client: TestClient,
    worker_process: WorkerProcess,
    auth_headers: Headers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = auth_headers(database="acme")
    rows = canary_batch(1_200)
    accepted = client.put(BATCH, content=orjson.dumps(rows), headers=headers)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["data"]["jobId"]
    wait_for_job(client, job_id, headers)
    results = client.get(f"/jobs/{job_id}/results", headers=headers).json()["data"]
    assert (results[0]["status"], results[1]["status"]) == (201, 400)
    worker_log = worker_process.log()
    assert job_id in worker_log  # the log is the one that saw the job
    assert leaks(worker_log, headers) == []
    api_log = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert leaks(api_log, headers) == []


def test_stored_task_messages_carry_ids_not_rows(
    stack_env: dict[str, str], redis_url: str, auth_headers: Headers
) -> None:
    """Submitted on a queue no worker reads, so the messages stay in Redis to be read."""
    quiet = f"{stack_env['CLAIMPAY_QUEUE']}-quiet"
    settings = stack_settings({**stack_env, "CLAIMPAY_QUEUE": quiet})
    headers = auth_headers(database="demo")
    redis = Redis.from_url(redis_url)
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as api:
            for count in (3, 1_200):  # a small job (fast queue) and a three-chunk one
                accepted = api.put(
                    BATCH, content=orjson.dumps(canary_batch(count)), headers=headers
                )
                assert accepted.status_code == 202, accepted.text
        messages = [
            cast(bytes, raw)
            for queue in (quiet, fast_queue(quiet))
            for raw in redis.lrange(queue, 0, -1)
        ]
        assert len(messages) == 4
        for raw in messages:
            text = raw.decode()
            assert leaks(text, headers) == []
            message = orjson.loads(raw)
            body = orjson.loads(base64.b64decode(message["body"]))
            job_id, chunk_no = body[0]
            assert len(job_id) == 32
            assert isinstance(chunk_no, int)
            assert body[1] == {}
            assert leaks(base64.b64decode(message["body"]).decode(), headers) == []
            assert message["headers"]["argsrepr"].startswith(f"(job={job_id}, chunk={chunk_no}")
    finally:
        redis.delete(quiet, fast_queue(quiet))
        redis.close()
