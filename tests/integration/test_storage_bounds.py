"""Storage amplification: what a job keeps in Redis is bounded by the body it came from.

A body of rows full of unknown fields used to leave ~3.7 times its size in Redis for the
result TTL (every row's message repeated every unknown name, and its failed rows were kept
for a retry). Against the real worker: the stored text of a row's error is bounded, and the
job's bytes in Redis stay within the README's formula, here well under twice the body."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from redis import Redis

from claimpay.envelope import MAX_ROW_MESSAGE_BYTES
from claimpay.rows import MAX_NAMED_ERRORS
from tests.factories import make_row
from tests.integration.batches import Headers, accepted_job
from tests.integration.conftest import stack_settings, wait_for_job

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

FIRST = 1_600_001
ROWS = 2_000
UNKNOWN_FIELDS = 60


def job_bytes(redis: Redis, prefix: str, job_id: str) -> int:
    """Bytes Redis uses for every key of the job (`MEMORY USAGE`, overheads included)."""
    total = 0
    for key in redis.scan_iter(match=f"{prefix}:job:{job_id}*", count=1000):
        total += int(redis.memory_usage(key, samples=0) or 0)
    return total


def hostile_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(ROWS):
        row: dict[str, Any] = make_row(FIRST + i)
        row.update({f"unknown_field_{n:03d}_{i % 7}": 0 for n in range(UNKNOWN_FIELDS)})
        rows.append(row)
    return rows


def test_a_body_of_unknown_fields_keeps_less_than_twice_its_size_in_redis(
    client: TestClient, stack_env: dict[str, str], auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    body = orjson.dumps(hostile_rows())
    response = client.put(
        "/claim-prompt-pays-batch", content=body, headers=headers, params={"chunkSize": 500}
    )
    job_id = accepted_job(response)
    status = wait_for_job(client, job_id, headers)
    assert status["failed"] == ROWS

    results = client.get(f"/jobs/{job_id}/results", headers=headers).json()["data"]
    message = results[0]["body"]
    assert message.count("unknown field") == MAX_NAMED_ERRORS
    assert message.endswith(f"and {UNKNOWN_FIELDS - MAX_NAMED_ERRORS} more")
    assert max(len(item["body"].encode()) for item in results) <= MAX_ROW_MESSAGE_BYTES

    settings = stack_settings(stack_env)
    redis = Redis.from_url(stack_env["CLAIMPAY_REDIS_URL"])
    try:
        stored = job_bytes(redis, settings.key_prefix, job_id)
    finally:
        redis.close()
    assert stored < 2 * len(body), (stored, len(body))
