"""Hostile bodies against a real `claimpay api` process on the real Redis: each gets a clear
4xx, the process stays up and answers the next call, its peak memory stays bounded, and
nothing of the refused bodies is left in Redis."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from redis import Redis

from cli.devstack import free_port, wait_for_port
from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET, make_rows
from worker.migrate import upgrade

pytestmark = pytest.mark.redis

BATCH = "/claim-prompt-pays-batch"
MAX_BODY_BYTES = 100 * 2**20
PEAK_GROWTH_LIMIT = 256 * 2**20
"""Most the API process's peak RSS may grow above its idle size for any one body."""


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    port: int
    prefix: str
    log_path: Path

    def memory(self, field: str) -> int:
        """`VmRSS` or `VmHWM` (peak) of the process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"process {self.process.pid} is gone")

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


@pytest.fixture(scope="module")
def api_process(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """`claimpay api`, as an operator starts it, on its own key prefix and queue."""
    workdir = tmp_path_factory.mktemp("hostile")
    database = f"sqlite:///{workdir / 'demo.db'}"
    upgrade(database)
    prefix, port = f"cphostile{secrets.token_hex(4)}", free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMPAY_")}
    env.update(
        CLAIMPAY_REDIS_URL=redis_url,
        CLAIMPAY_DATABASES=json.dumps({"demo": database}),
        CLAIMPAY_API_KEYS=json.dumps({API_KEY: ["*"]}),
        CLAIMPAY_JWT_SECRET=JWT_SECRET,
        CLAIMPAY_KEY_PREFIX=prefix,
        CLAIMPAY_QUEUE=prefix,
        CLAIMPAY_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        CLAIMPAY_LOG_FORMAT="json",
        CLAIMPAY_MAX_ACTIVE_JOBS_PER_KEY="0",  # no worker here: the small batches stay queued
        CLAIMPAY_RATE_LIMIT_PER_S="0",
    )
    log_path = workdir / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "api", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, 60, process)
        yield ApiProcess(process, port, prefix, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        redis = Redis.from_url(redis_url)
        leftovers = list(redis.scan_iter(match=f"{prefix}*", count=1000))
        if leftovers:
            redis.delete(*leftovers)
        redis.close()


def headers() -> dict[str, str]:
    return {
        "x-api-key": API_KEY,
        "Authorization": "Bearer " + mint_token(JWT_SECRET, "hostile", 600),
        "vbasoftware-database": "demo",
        "Content-Type": "application/json",
    }


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE: dict[str, tuple[bytes, int, str]] = {
    "50 MB of garbage": (os.urandom(50 * 2**20), 400, "malformed-body"),
    "50 MB of garbage after a bracket": (b"[" + os.urandom(50 * 2**20), 400, ""),
    "100k-deep nested arrays": (nested(100_000), 400, "nesting-too-deep"),
    "50 MB of unclosed arrays": (b"[" * (50 * 2**20), 400, "nesting-too-deep"),
    "a 10 MB string": (
        b'[{"claimPromptPay_Key": 1, "tax_ID": "' + b"7" * (10 * 2**20) + b'"}]',
        413,
        "row-too-large",
    ),
    "NaN": (b'[{"claimPromptPay_Key": NaN}]', 400, "malformed-body"),
    "Infinity": (b'[{"claimPromptPay_Key": 1, "prompt_Pay_Duration": Infinity}]', 400, ""),
    "an overflowing number": (b'[{"claimPromptPay_Key": 1e999}]', 400, "malformed-body"),
    "duplicate keys": (
        b'[{"claimPromptPay_Key": 1, "claimPromptPay_Key": 2}]',
        400,
        "duplicate-keys",
    ),
    "invalid UTF-8": (b'[{"claimPromptPay_Key": 1, "tax_ID": "\xff\xfe\xc3"}]', 400, ""),
    "2M empty rows": (b"[" + b",".join([b"{}"] * 2_000_000) + b"]", 413, "too-many-rows"),
    "2M keyed rows (61 MB, streamed)": (
        b"[" + b",".join(b'{"claimPromptPay_Key":%d}' % n for n in range(2_000_000)) + b"]",
        413,
        "too-many-rows",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_body_gets_a_clear_4xx_in_bounded_memory(
    api_process: ApiProcess, name: str
) -> None:
    body, status, slug = HOSTILE[name]
    base = f"http://127.0.0.1:{api_process.port}"
    with httpx.Client(base_url=base, timeout=120) as client:
        assert client.get("/health/live").status_code == 200
        idle = api_process.memory("VmRSS")
        api_process.reset_peak()
        response = client.put(BATCH, content=body, headers=headers())
        peak = api_process.memory("VmHWM")
        assert response.status_code == status, response.text[:500]
        problem = response.json()
        assert problem["data"] is None
        assert problem["error"]["type"].startswith("urn:claimpay:problem:" + slug)
        assert peak - idle < PEAK_GROWTH_LIMIT, f"peak RSS grew {(peak - idle) >> 20} MiB"
        assert client.get("/health/live").status_code == 200
        fine = client.put(BATCH, content=orjson.dumps(make_rows(3)), headers=headers())
        assert fine.status_code == 202
    assert api_process.process.poll() is None


def test_refused_bodies_leave_no_rows_in_redis(api_process: ApiProcess, redis_url: str) -> None:
    base = f"http://127.0.0.1:{api_process.port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        refused = client.put(BATCH, content=HOSTILE["2M empty rows"][0], headers=headers())
        assert refused.status_code == 413
    redis = Redis.from_url(redis_url)
    try:
        metas = list(redis.scan_iter(match=f"{api_process.prefix}:job:*", count=1000))
        rows = [key for key in metas if b":rows:" in key]
        jobs = {key.split(b":")[2] for key in metas}
        receiving = [
            job
            for job in jobs
            if redis.hget(f"{api_process.prefix}:job:{job.decode()}", "state") == b"receiving"
        ]
        assert receiving == []
        accepted_rows = sum(redis.llen(key) for key in rows)
        assert accepted_rows <= 3 * len(HOSTILE)  # only the small batches sent between
    finally:
        redis.close()


def _raw_request(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head)
    return sock


def _read_status(sock: socket.socket) -> int:
    received = b""
    while b"\r\n" not in received:
        data = sock.recv(4096)
        if not data:
            break
        received += data
    return int(received.split(b" ", 2)[1])


def _request_head(extra: str) -> bytes:
    lines = [f"PUT {BATCH} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers().items()]
    return ("\r\n".join([*lines, extra]) + "\r\n\r\n").encode()


def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(
    api_process: ApiProcess,
) -> None:
    sock = _raw_request(api_process.port, _request_head(f"Content-Length: {MAX_BODY_BYTES + 1}"))
    try:
        assert _read_status(sock) == 413
    finally:
        sock.close()


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    api_process: ApiProcess,
) -> None:
    """The body never ends (no last chunk): an answer proves the server stopped reading."""
    sock = _raw_request(api_process.port, _request_head("Transfer-Encoding: chunked"))
    row = orjson.dumps(make_rows(1)[0])
    piece = b"[" + b",".join([row] * 8_000) + b","
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    try:
        sent = 0
        while sent <= MAX_BODY_BYTES + len(piece):
            sock.sendall(chunk)
            sent += len(piece)
            piece = b",".join([row] * 8_000) + b","
            chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        assert _read_status(sock) == 413
    finally:
        sock.close()
