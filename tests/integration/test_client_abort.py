"""A client that hangs up in the middle of its body, against a real `claimpay api` process:
counted as 499 (client closed request) with one INFO line, never as a 500 with an ERROR
and a traceback; nothing of the half-sent batch stays in Redis and the key's job slot is
given back."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET
from tests.integration.api_process import ApiProcess, sqlite_api

pytestmark = pytest.mark.redis

BUFFER_BYTES = 64 * 1024
"""The intake's run size here (`CLAIMPAY_INTAKE_BUFFER_BYTES`)."""
ROW = b'{"claimPromptPay_Key": 7, "group_ID": "GRP001"},'
PREFIX = f"cpabort{secrets.token_hex(4)}"
METRIC = 'claimpay_http_requests_total{method="PUT",route="/claim-prompt-pays-batch",status="%s"}'


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with sqlite_api(
        redis_url,
        tmp_path_factory.mktemp("abort"),
        PREFIX,
        CLAIMPAY_LOG_FORMAT="json",
        CLAIMPAY_LOG_LEVEL="INFO",
        CLAIMPAY_INTAKE_BUFFER_BYTES=str(BUFFER_BYTES),
        CLAIMPAY_MAX_ACTIVE_JOBS_PER_KEY="1",
    ) as process:
        yield process


def hang_up_mid_body(api: ApiProcess, sent_bytes: int, idempotency_key: str = "") -> None:
    """Declare a 100 MB body, send `sent_bytes` of it, close the connection."""
    host, port = api.base_url.removeprefix("http://").split(":")
    extra = f"Idempotency-Key: {idempotency_key}\r\n" if idempotency_key else ""
    head = (
        "PUT /claim-prompt-pays-batch HTTP/1.1\r\nHost: claimpay\r\n"
        f"x-api-key: {API_KEY}\r\nAuthorization: Bearer {mint_token(JWT_SECRET, 'u', 600)}\r\n"
        f"vbasoftware-database: demo\r\nContent-Type: application/json\r\n{extra}"
        "Content-Length: 100000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(head.encode() + b"[" + ROW * (sent_bytes // len(ROW)))
        time.sleep(0.3)  # let the server start reading before the hang-up


def count(api: ApiProcess, status: int) -> float:
    for line in httpx.get(f"{api.base_url}/metrics").text.splitlines():
        if line.startswith(METRIC % status):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(
    ("sent_bytes", "idempotency_key"),
    [
        (BUFFER_BYTES // 2, ""),  # the hang-up comes before the first run is cut
        (BUFFER_BYTES * 4, ""),  # after a few runs were parsed and written
        (BUFFER_BYTES * 4, "abort-key-1"),
    ],
)
def test_a_client_hanging_up_mid_body_is_a_499_logged_once_at_info(
    api: ApiProcess, redis_url: str, sent_bytes: int, idempotency_key: str
) -> None:
    redis = Redis.from_url(redis_url)
    job_keys = set(redis.scan_iter(f"{PREFIX}:job:*"))
    before = count(api, 499), count(api, 500)
    log_start = len(api.log())
    hang_up_mid_body(api, sent_bytes, idempotency_key)
    deadline = time.monotonic() + 30
    while count(api, 499) < before[0] + 1:
        assert time.monotonic() < deadline, api.log()[log_start:][-3000:]
        time.sleep(0.1)

    assert count(api, 500) == before[1]
    lines = [json.loads(line) for line in api.log()[log_start:].splitlines() if line.strip()]
    assert [line for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []
    assert not any("exc" in line or "Traceback" in line["msg"] for line in lines)
    aborts = [line for line in lines if line.get("status") == 499]
    assert len(aborts) == 1
    assert aborts[0]["level"] == "INFO"
    assert aborts[0]["route"] == "/claim-prompt-pays-batch"

    # Nothing of the half-sent batch is kept, and the key's single job slot is free again.
    assert set(redis.scan_iter(f"{PREFIX}:job:*")) == job_keys
    redis.close()

    token = mint_token(JWT_SECRET, "u", 600)
    headers = {"x-api-key": API_KEY, "Authorization": f"Bearer {token}"}
    headers["vbasoftware-database"] = "demo"
    accepted = httpx.put(
        f"{api.base_url}/claim-prompt-pays-batch",
        content=b"[]",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert accepted.status_code in (202, 207), accepted.text
