"""Issue 12, finding 1: receivers that trickle their answer a byte at a time hold no process
that applies chunks, and each attempt ends at its deadline (`CLAIMPAY_WEBHOOK_TIMEOUT_S`).

Real processes: a Celery worker with a single pool process, the real Redis and PostgreSQL,
and hostile receivers on loopback that never finish their answer."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from producer.main import create_app
from tests.factories import make_rows
from tests.integration.batches import Headers, accepted_job, put_batch
from tests.integration.conftest import stack_settings, start_worker, stop_worker, wait_for_job
from tests.integration.namespaces import purge_namespace
from tests.slowreceiver import slow_receiver

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_600_001
SLOW_RECEIVERS = 6


def deployment(stack_env: dict[str, str], tmp_path: Path, timeout_s: float) -> Iterator[TestClient]:
    """The API in-process and a worker with ONE pool process, on a namespace of their own."""
    namespace = f"cpwh{secrets.token_hex(4)}"
    env = {
        **stack_env,
        "CLAIMPAY_KEY_PREFIX": namespace,
        "CLAIMPAY_QUEUE": namespace,
        "CLAIMPAY_WEBHOOK_TIMEOUT_S": str(timeout_s),
        "CLAIMPAY_WEBHOOK_CONCURRENCY": "4",
    }
    worker = start_worker(env, tmp_path / "worker.log", concurrency=1)
    try:
        with TestClient(create_app(stack_settings(env)), raise_server_exceptions=False) as api:
            yield api
    finally:
        stop_worker(worker)
        purge_namespace(env)


@pytest.fixture
def patient_deployment(stack_env: dict[str, str], tmp_path: Path) -> Iterator[TestClient]:
    """Webhook attempts may take a minute: the slow receivers outlast the test."""
    yield from deployment(stack_env, tmp_path, timeout_s=60)


@pytest.fixture
def strict_deployment(stack_env: dict[str, str], tmp_path: Path) -> Iterator[TestClient]:
    yield from deployment(stack_env, tmp_path, timeout_s=1)


def test_another_callers_job_completes_while_slow_receivers_are_being_called(
    patient_deployment: TestClient, auth_headers: Headers
) -> None:
    client = patient_deployment
    headers = auth_headers(database="acme")
    with slow_receiver(interval_s=1.0) as receiver:
        for n in range(SLOW_RECEIVERS):
            rows = make_rows(1, first_key=FIRST + n)
            job_id = accepted_job(put_batch(client, rows, headers, {"callbackUrl": receiver.url}))
            wait_for_job(client, job_id, headers)
        # More slow receivers than the node's senders (4) and its one pool process:
        # four are being called now, two wait their turn in the outbox.
        receiver.wait_until("open_now", 4)

        other = auth_headers(database="demo", user="bob")
        job_id = accepted_job(put_batch(client, make_rows(1, first_key=FIRST + 100), other))
        status = wait_for_job(client, job_id, other)

        assert status["created"] == 1
        assert receiver.open_now == 4  # still connected, still trickling
        assert receiver.hung_up == 0


def test_an_attempt_is_cut_at_its_deadline_and_tried_again(
    strict_deployment: TestClient, auth_headers: Headers
) -> None:
    client = strict_deployment
    headers = auth_headers(database="acme")
    with slow_receiver(interval_s=0.2) as receiver:
        rows = make_rows(1, first_key=FIRST + 200)
        job_id = accepted_job(put_batch(client, rows, headers, {"callbackUrl": receiver.url}))
        wait_for_job(client, job_id, headers)
        receiver.wait_until("hung_up", 2)  # the worker closed two attempts at their deadline
        assert receiver.requests >= 2
