"""Webhooks: one attempt is bounded by a wall-clock deadline however slowly the receiver
answers; the outbox hands each due webhook to one sender and retries with backoff; the
senders run beside the pool, so a slow receiver holds one sender thread, nothing else."""

from __future__ import annotations

import threading
import time

import pytest

from claimpay.jobstore import JobStore
from claimpay.settings import Settings
from tests.slowreceiver import slow_receiver
from worker.outbox import Outbox
from worker.sender import WebhookSender
from worker.webhooks import WebhookFailed, post_within


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"retry_backoff_s": 0.01, "retry_backoff_max_s": 0.02}
    return Settings.model_validate({**values, **overrides})


def test_an_attempt_ends_at_its_deadline_though_the_receiver_keeps_trickling() -> None:
    outcome: list[BaseException] = []

    def attempt(url: str) -> None:
        try:
            post_within(url, b"{}", {"Content-Type": "application/json"}, 0.5)
        except BaseException as exc:
            outcome.append(exc)

    with slow_receiver(interval_s=0.05) as receiver:
        thread = threading.Thread(target=attempt, args=(receiver.url,), daemon=True)
        thread.start()
        thread.join(30)  # not a timing bound: a hung attempt would stay alive for ever
        assert not thread.is_alive()
        receiver.wait_until("hung_up", 1)  # the sender closed the connection
        assert receiver.requests == 1
    (error,) = outcome
    assert isinstance(error, WebhookFailed)
    assert "no answer within 0.5s" in str(error)


def test_a_refused_connection_is_a_failed_attempt() -> None:
    with slow_receiver() as receiver:
        url = receiver.url
    with pytest.raises(WebhookFailed, match="ConnectError"):
        post_within(url, b"{}", {}, 5)


def test_a_due_webhook_is_claimed_once_until_settled(job_store: JobStore) -> None:
    outbox = Outbox(job_store)
    outbox.schedule("j1")
    (first,) = outbox.claim(10, lease_s=60)
    assert (first.job_id, first.attempt) == ("j1", 1)
    assert outbox.claim(10, lease_s=60) == []  # leased to its sender
    assert outbox.settle(first, retry_in_s=5)
    assert outbox.claim(10, lease_s=60) == []  # not due yet
    (second,) = outbox.claim(10, lease_s=60, now=time.time() + 6)
    assert second.attempt == 2
    assert outbox.settle(second)
    assert outbox.pending() == {}


def test_a_sender_that_died_leaves_its_webhook_due_after_the_lease(job_store: JobStore) -> None:
    outbox = Outbox(job_store)
    outbox.schedule("j1")
    outbox.claim(10, lease_s=30)
    (again,) = outbox.claim(10, lease_s=30, now=time.time() + 31)
    assert again.attempt == 2


def test_a_job_finished_again_during_an_attempt_keeps_its_new_webhook(
    job_store: JobStore,
) -> None:
    outbox = Outbox(job_store)
    outbox.schedule("j1")
    (stale,) = outbox.claim(10, lease_s=60)
    outbox.schedule("j1")  # a retry round finished while the first attempt ran
    assert not outbox.settle(stale)
    (fresh,) = outbox.claim(10, lease_s=60)
    assert fresh.attempt == 1


def test_the_sender_gives_up_after_the_retries(job_store: JobStore) -> None:
    calls: list[str] = []
    gave_up = threading.Event()

    def failing(store: JobStore, settings: Settings, job_id: str) -> bool:
        calls.append(job_id)
        if len(calls) == 3:
            gave_up.set()
        raise WebhookFailed("HTTP 500")

    sender = WebhookSender(job_store, settings(webhook_max_retries=2), send=failing)
    Outbox(job_store).schedule("j1")
    sender.start()
    try:
        assert gave_up.wait(30)
        deadline = time.monotonic() + 30
        while Outbox(job_store).pending() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sender.stop()
    assert calls == ["j1"] * 3  # the first attempt and two retries
    assert Outbox(job_store).pending() == {}


def test_a_slow_receiver_holds_one_sender_thread_and_nothing_else(job_store: JobStore) -> None:
    release = threading.Event()
    delivered: list[str] = []

    def send(store: JobStore, settings: Settings, job_id: str) -> bool:
        if job_id.startswith("slow"):
            release.wait(60)
        delivered.append(job_id)
        return True

    sender = WebhookSender(job_store, settings(webhook_concurrency=4), send=send)
    outbox = Outbox(job_store)
    for n in range(3):
        outbox.schedule(f"slow{n}")
    sender.start()
    try:
        time.sleep(0.3)  # let the slow ones be claimed first
        outbox.schedule("fast")
        deadline = time.monotonic() + 30
        while "fast" not in delivered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert delivered == ["fast"]  # while all three slow ones are still being sent
    finally:
        release.set()
        sender.stop()
