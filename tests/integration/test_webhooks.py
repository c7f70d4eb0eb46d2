"""Completion webhooks: when a job with a `callbackUrl` finishes, the worker POSTs the
job's summary, signed with HMAC-SHA256 over `"<timestamp>." + body`, to a receiver on
loopback; a receiver that fails is tried again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from claimpay.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.factories import make_rows
from tests.integration.batches import Headers, accepted_job, put_batch
from tests.integration.conftest import WEBHOOK_SECRET, WorkerProcess, wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_400_001


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 that records every POST and answers with the next
    status of `answers` (200 once they run out)."""

    answers: list[int]
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""

    def wait_for(self, count: int, timeout_s: float = 30) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        while len(self.deliveries) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.deliveries)} of {count} webhooks arrived")
            time.sleep(0.05)
        return list(self.deliveries)


def serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answers.pop(0) if receiver.answers else 200
            receiver.deliveries.append(Delivery(dict(self.headers), body, time.time()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the deliveries, not the log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/claimpay"
    return server


@pytest.fixture
def make_receiver() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def make(*answers: int) -> Receiver:
        receiver = Receiver(list(answers))
        server = serve(receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def assert_signed(delivery: Delivery) -> None:
    headers = {name.lower(): value for name, value in delivery.headers.items()}
    timestamp = headers[TIMESTAMP_HEADER.lower()]
    signature = headers[SIGNATURE_HEADER.lower()]
    assert headers["content-type"] == "application/json"
    assert signature.startswith("sha256=")
    assert verify(WEBHOOK_SECRET, timestamp, signature, delivery.body, now=delivery.received_at)
    assert not verify("another-secret", timestamp, signature, delivery.body, delivery.received_at)
    tampered = delivery.body.replace(b'"completed"', b'"cancelled"')
    assert not verify(WEBHOOK_SECRET, timestamp, signature, tampered, delivery.received_at)


def test_a_finished_job_is_posted_signed_to_its_callback_url(
    client: TestClient, make_receiver: Any, auth_headers: Headers
) -> None:
    receiver: Receiver = make_receiver()
    headers = auth_headers(database="acme")
    rows = make_rows(12, first_key=FIRST)
    job_id = accepted_job(
        put_batch(client, rows, headers, {"callbackUrl": receiver.url, "chunkSize": 5})
    )
    status = wait_for_job(client, job_id, headers)

    (delivery,) = receiver.wait_for(1)
    assert_signed(delivery)
    assert orjson.loads(delivery.body) == {
        "data": status,
        "error": None,
        "debug": {"activityID": job_id},
    }
    assert status["state"] == "completed"
    assert status["created"] == 12
    time.sleep(0.5)
    assert len(receiver.deliveries) == 1


def test_a_receiver_that_fails_first_gets_the_webhook_again(
    client: TestClient, make_receiver: Any, auth_headers: Headers
) -> None:
    receiver: Receiver = make_receiver(500)
    headers = auth_headers(database="acme")
    job_id = accepted_job(
        put_batch(
            client, make_rows(3, first_key=FIRST + 100), headers, {"callbackUrl": receiver.url}
        )
    )
    status = wait_for_job(client, job_id, headers)

    failed, delivered = receiver.wait_for(2)
    for delivery in (failed, delivered):
        assert_signed(delivery)
        assert orjson.loads(delivery.body)["data"] == status
    time.sleep(0.5)
    assert len(receiver.deliveries) == 2


def test_a_callback_url_that_is_not_http_is_refused(
    client: TestClient, auth_headers: Headers
) -> None:
    response = put_batch(
        client,
        make_rows(1, first_key=FIRST + 200),
        auth_headers(database="acme"),
        {"callbackUrl": "file:///etc/passwd"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == 400


def test_a_callbacks_credentials_and_query_never_reach_the_worker_log(
    client: TestClient, make_receiver: Any, auth_headers: Headers, worker_process: WorkerProcess
) -> None:
    receiver: Receiver = make_receiver()
    url = receiver.url.replace("http://", "http://hookuser:Pw-LEAK-31337@")
    url += "?token=TOKEN-LEAK-4242&x=1#FRAG-LEAK"
    headers = auth_headers(database="acme")
    job_id = accepted_job(
        put_batch(client, make_rows(2, first_key=FIRST + 300), headers, {"callbackUrl": url})
    )
    wait_for_job(client, job_id, headers)
    (delivery,) = receiver.wait_for(1)
    assert_signed(delivery)
    assert delivery.headers["Authorization"].startswith("Basic ")  # the userinfo was used

    deadline = time.monotonic() + 10
    while f"{receiver.url.split('//')[1].split('/')[0]}/hooks" not in worker_process.log():
        assert time.monotonic() < deadline, "httpx's request line never reached the log"
        time.sleep(0.1)
    log = worker_process.log()
    for secret in ("hookuser", "Pw-LEAK-31337", "TOKEN-LEAK-4242", "FRAG-LEAK"):
        assert secret not in log
    assert "HTTP Request: POST http://***@127.0.0.1:" in log
    assert "/hooks/claimpay?***" in log


@pytest.mark.parametrize(
    "callback", ["http://0177.0.0.1/hook", "http://127.0.0.1/a\r\nX-Evil: 1", "http://127.1/"]
)
def test_a_callback_url_no_worker_could_deliver_is_refused(
    client: TestClient, auth_headers: Headers, callback: str
) -> None:
    response = put_batch(
        client,
        make_rows(1, first_key=FIRST + 400),
        auth_headers(database="acme"),
        {"callbackUrl": callback},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"].endswith("invalid-callback")
