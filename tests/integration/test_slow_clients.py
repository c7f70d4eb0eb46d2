"""Issue 12, finding 9: unauthenticated load and slow clients against a real `claimpay
api` process: oversized heads get 431, heads and bodies that stall get 408 and their
connection is closed, and the process answers the next caller normally."""

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
from tests.factories import API_KEY, JWT_SECRET, make_rows
from tests.integration.api_process import ApiProcess, sqlite_api

pytestmark = pytest.mark.redis

IDLE_S = 1.0
PREFIX = f"cpslow{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with sqlite_api(
        redis_url,
        tmp_path_factory.mktemp("slowclients"),
        PREFIX,
        CLAIMPAY_RATE_LIMIT_PER_S="0",
        CLAIMPAY_MAX_ACTIVE_JOBS_PER_KEY="0",
        CLAIMPAY_HEADER_TIMEOUT_S=str(IDLE_S),
        CLAIMPAY_BODY_IDLE_TIMEOUT_S=str(IDLE_S),
    ) as process:
        yield process


def exchange(api: ApiProcess, *parts: bytes, pause_s: float = 0.0) -> bytes:
    """Send `parts` (pausing between them) on one connection; everything the server sends
    back until it closes the connection (a server that never closes fails the test)."""
    port = int(api.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            for part in parts:
                sock.sendall(part)
                time.sleep(pause_s)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused and closed before the client was done: read its answer
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def still_answers(api: ApiProcess) -> None:
    assert httpx.get(f"{api.base_url}/health/live", timeout=30).status_code == 200


def batch_head(length: int) -> bytes:
    token = mint_token(JWT_SECRET, "alice", 600)
    return (
        "PUT /claim-prompt-pays-batch HTTP/1.1\r\nHost: x\r\n"
        f"x-api-key: {API_KEY}\r\nAuthorization: Bearer {token}\r\n"
        "vbasoftware-database: demo\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_five_thousand_headers_get_431(api: ApiProcess) -> None:
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(5000))
    answer = exchange(api, b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert status_of(answer) == 431
    still_answers(api)


def test_a_one_megabyte_header_gets_431(api: ApiProcess) -> None:
    huge = b"X-Huge: " + b"a" * 2**20 + b"\r\n"
    answer = exchange(api, b"GET /health/live HTTP/1.1\r\nHost: x\r\n", huge, b"\r\n")
    assert status_of(answer) == 431
    still_answers(api)


def test_headers_within_the_limits_are_served(api: ApiProcess) -> None:
    headers = {f"X-H{n}": "v" * 100 for n in range(50)}
    assert httpx.get(f"{api.base_url}/health/live", headers=headers).status_code == 200


def test_a_head_trickled_byte_by_byte_gets_408(api: ApiProcess) -> None:
    head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
    parts = [head[n : n + 1] for n in range(len(head))]
    answer = exchange(api, *parts, pause_s=0.1)  # 8 s in all; the limit is 1 s
    assert status_of(answer) == 408
    still_answers(api)


def stored_jobs(redis_url: str) -> list[bytes]:
    redis = Redis.from_url(redis_url)
    try:
        return list(redis.scan_iter(match=f"{PREFIX}:job:*"))
    finally:
        redis.close()


def test_a_body_that_stalls_gets_408_and_nothing_is_stored(api: ApiProcess, redis_url: str) -> None:
    body = json.dumps(make_rows(50)).encode()
    answer = exchange(api, batch_head(len(body)) + body[:100], pause_s=IDLE_S * 5)
    assert status_of(answer) == 408
    problem = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert problem["status"] == 408
    assert problem["type"].endswith("body-stalled")
    still_answers(api)
    assert stored_jobs(redis_url) == []  # the partial job was discarded


def test_a_body_trickled_a_byte_at_a_time_gets_408(api: ApiProcess) -> None:
    body = json.dumps(make_rows(50)).encode()
    parts = [batch_head(len(body))] + [body[n : n + 1] for n in range(200)]
    answer = exchange(api, *parts, pause_s=IDLE_S / 4)  # never idle a whole second
    assert status_of(answer) == 408
    still_answers(api)


def test_a_body_sent_normally_is_accepted(api: ApiProcess) -> None:
    body = json.dumps(make_rows(5)).encode()
    answer = exchange(api, batch_head(len(body)) + body, b"")
    assert status_of(answer) == 202, answer[:500]
