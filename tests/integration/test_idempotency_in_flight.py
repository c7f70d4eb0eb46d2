"""`Idempotency-Key` while the first request is still being received: a duplicate gets
409 pointing at that job. The first request's body is streamed slowly to a real
`claimpay api` subprocess and held half-sent for as long as the test needs."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient

from claimpay.keys import StoreKeys
from producer.main import create_app
from tests.factories import make_rows
from tests.integration.api_process import ApiProcess, running_api
from tests.integration.batches import BATCH, Headers, accepted_job, redis_of, unlimited_key
from tests.integration.conftest import WorkerProcess, stack_settings, wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_150_001
IN_FLIGHT_KEY = "test-key-idempotency-in-flight"
CRASH_KEY = "test-key-idempotency-crash"
RETRY_GRACE_S = 25.0
"""How long a key may stay taken after the request holding it died with its API process."""


def idempotent(headers: dict[str, str], name: str) -> dict[str, str]:
    """`headers` with a fresh `Idempotency-Key`, unique to this run."""
    return {**headers, "Idempotency-Key": f"{name}-{uuid.uuid4()}"}


@pytest.fixture(scope="module")
def env(stack_env: dict[str, str]) -> dict[str, str]:
    return unlimited_key(stack_env, IN_FLIGHT_KEY)


@pytest.fixture
def caller(auth_headers: Headers) -> Headers:
    """Headers of a call with this module's API key: `caller(database="acme")`."""
    return functools.partial(auth_headers, key=IN_FLIGHT_KEY)


@pytest.fixture(scope="module")
def keyed(env: dict[str, str], worker_process: WorkerProcess) -> Iterator[TestClient]:
    """The API in-process for `env`, to poll jobs."""
    with TestClient(create_app(stack_settings(env)), raise_server_exceptions=False) as api:
        yield api


class SlowBody:
    """A request body sent in two parts: the second only once `release` is set, so the
    request stays in the middle of being received for as long as the test wants."""

    def __init__(self, rows: list[Any]) -> None:
        text = json.dumps(rows).encode()
        self.head, self.tail = text[: len(text) // 2], text[len(text) // 2 :]
        self.head_sent = threading.Event()
        self.release = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        self.head_sent.set()
        self.release.wait(30)
        yield self.tail


@dataclass
class SlowUpload:
    """A batch request held in the middle of its body; `job_id` is the job it claimed
    the key for, `response` its answer once the body was finished."""

    job_id: str = ""
    response: httpx.Response | None = None
    error: httpx.HTTPError | None = None


def idempotency_records(env: dict[str, str]) -> dict[bytes, bytes]:
    """Every idempotency record of the deployment: its Redis key -> the job it names."""
    redis = redis_of(env)
    try:
        pattern = StoreKeys(env["CLAIMPAY_KEY_PREFIX"]).idempotency("*")
        return {
            key: cast(bytes, redis.hget(key, "jobId") or b"")
            for key in redis.scan_iter(match=pattern)
        }
    finally:
        redis.close()


def wait_for_new_record(env: dict[str, str], known: set[bytes], timeout_s: float = 10) -> str:
    """The job ID of the first idempotency record not in `known`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fresh = {k: v for k, v in idempotency_records(env).items() if k not in known and v}
        if fresh:
            return next(iter(fresh.values())).decode()
        time.sleep(0.02)
    raise AssertionError("the first request never claimed its Idempotency-Key")


@contextlib.contextmanager
def upload_in_progress(
    url: str, rows: list[Any], headers: dict[str, str], env: dict[str, str]
) -> Iterator[SlowUpload]:
    """Inside the block, a request with `rows` has claimed its key and is still being
    received; on leaving, its body is finished and its answer kept."""
    body = SlowBody(rows)
    known = set(idempotency_records(env))
    upload = SlowUpload()

    def send_slowly() -> None:
        try:
            upload.response = httpx.put(url, content=body, headers=headers, timeout=60)
        except httpx.HTTPError as exc:  # the server went away mid-request
            upload.error = exc

    sender = threading.Thread(target=send_slowly)
    sender.start()
    try:
        assert body.head_sent.wait(10)
        upload.job_id = wait_for_new_record(env, known)
        yield upload
    finally:
        body.release.set()
        sender.join(60)


@pytest.fixture(scope="module")
def api(
    env: dict[str, str],
    worker_process: WorkerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiProcess]:
    """`claimpay api` for `env`: a real server, so a body can be streamed slowly."""
    log_path: Path = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(env, log_path) as running:
        yield running


def test_a_duplicate_sent_while_the_first_is_received_gets_409_with_its_job(
    api: ApiProcess, keyed: TestClient, env: dict[str, str], caller: Headers
) -> None:
    rows = make_rows(200, first_key=FIRST + 1_000)
    headers = idempotent(caller(database="acme"), "concurrent")
    url = api.base_url + BATCH
    with upload_in_progress(url, rows, headers, env) as first:
        duplicate = httpx.put(url, content=json.dumps(rows), headers=headers, timeout=30)

    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["error"]["status"] == 409
    assert duplicate.headers["Location"] == f"/jobs/{first.job_id}"
    assert first.response is not None
    assert accepted_job(first.response) == first.job_id
    assert wait_for_job(keyed, first.job_id, headers)["created"] == 200
    replay = httpx.put(url, content=json.dumps(rows), headers=headers, timeout=30)
    assert accepted_job(replay) == first.job_id


def test_the_job_a_409_points_at_can_be_polled_while_it_is_received(
    api: ApiProcess, keyed: TestClient, env: dict[str, str], caller: Headers
) -> None:
    rows = make_rows(20, first_key=FIRST + 2_000)
    headers = idempotent(caller(database="acme"), "pointer")
    url = api.base_url + BATCH
    with upload_in_progress(url, rows, headers, env):
        duplicate = httpx.put(url, content=json.dumps(rows), headers=headers, timeout=30)
        assert duplicate.status_code == 409
        pointed = keyed.get(duplicate.headers["Location"], headers=headers)
    assert pointed.status_code == 200, pointed.text


def test_a_key_whose_request_died_with_the_api_can_be_used_again(
    stack_env: dict[str, str],
    worker_process: WorkerProcess,
    auth_headers: Headers,
    tmp_path: Path,
) -> None:
    crash_env = unlimited_key(stack_env, CRASH_KEY)
    rows = make_rows(5, first_key=FIRST + 3_000)
    headers = idempotent(auth_headers(database="acme", key=CRASH_KEY), "crash")
    with (
        running_api(crash_env, tmp_path / "doomed.log") as doomed,
        upload_in_progress(doomed.base_url + BATCH, rows, headers, crash_env) as upload,
    ):
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(10)
    assert upload.error is not None

    with running_api(crash_env, tmp_path / "restarted.log") as restarted:
        deadline = time.monotonic() + RETRY_GRACE_S
        while True:
            retried = httpx.put(
                restarted.base_url + BATCH, content=json.dumps(rows), headers=headers, timeout=30
            )
            if retried.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(2)
    assert retried.status_code == 202, retried.text
