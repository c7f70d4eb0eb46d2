"""A request waiting for its job (`Prefer: wait`) is woken by the job's end, published on
the real Redis by the script that ends it, instead of reading the job every 10 ms."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import anyio
import pytest
from redis import Redis

from claimpay.envelope import Outcome, RowStatus
from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore
from producer import preferences
from producer.jobends import JobEnds, client_name
from producer.preferences import WOKEN_POLL_S, until_terminal


@pytest.fixture
def store(redis_url: str) -> Iterator[JobStore]:
    redis = Redis.from_url(redis_url)
    prefix = f"it-ends-{secrets.token_hex(4)}"
    yield JobStore(redis, prefix, ttl_s=60)
    keys = list(redis.scan_iter(f"{prefix}:*"))
    if keys:
        redis.delete(*keys)
    redis.close()


class CountingStore(JobStore):
    """Counts the reads of a job's state."""

    reads = 0

    def meta(self, job_id: str) -> JobMeta | None:
        self.reads += 1
        return super().meta(job_id)


def queued(store: JobStore, job_id: str) -> JobMeta:
    store.begin(job_id, entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
    return store.seal(job_id, total=1, chunk_nos=[0])


def finish(store: JobStore, job_id: str) -> None:
    store.record_chunk(job_id, 0, [Outcome(0, RowStatus.CREATED, None, 1)])


def listening(ends: JobEnds, store: JobStore) -> None:
    """Start the listener (a watch starts it) and wait until it has subscribed."""

    async def start() -> None:
        with ends.watch("nobody"):
            for _ in range(200):
                if ends.listening:
                    return
                await anyio.sleep(0.01)
        raise AssertionError("the listener did not subscribe")

    anyio.run(start)


def wait_in_thread(
    store: JobStore, meta: JobMeta, wait_s: float, ends: JobEnds | None
) -> tuple[threading.Thread, dict[str, object]]:
    seen: dict[str, object] = {}

    def run() -> None:
        async def wait() -> JobMeta:
            return await until_terminal(store, meta, wait_s, ends=ends)

        seen["meta"] = anyio.run(wait)
        seen["at"] = time.perf_counter()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, seen


def test_a_waiting_request_is_woken_by_the_end_and_reads_the_job_rarely(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    store = CountingStore(redis, f"it-ends-{secrets.token_hex(4)}", ttl_s=60)
    ends = JobEnds(store)
    try:
        listening(ends, store)
        meta = queued(store, "j1")
        thread, seen = wait_in_thread(store, meta, 20.0, ends)
        time.sleep(1.5)
        reads_while_waiting = store.reads
        ended_at = time.perf_counter()
        finish(store, "j1")
        thread.join(10)
        assert not thread.is_alive()
        result = seen["meta"]
        assert isinstance(result, JobMeta)
        assert result.state.value == "completed"
        assert isinstance(seen["at"], float)
        assert seen["at"] - ended_at < WOKEN_POLL_S / 2  # woken, not found by a poll
        # Polling every 10 ms would have read it about 150 times in 1.5 s.
        assert reads_while_waiting <= 4
    finally:
        ends.close()
        redis.delete(*redis.scan_iter(f"{store.prefix}:*"))
        redis.close()


def test_a_cancel_that_ends_the_job_wakes_its_waiters(store: JobStore) -> None:
    ends = JobEnds(store)
    try:
        listening(ends, store)
        store.begin("j2", entity="claim-prompt-pays", database="demo", user="u", chunk_size=1)
        meta = store.seal("j2", total=2, chunk_nos=[0, 1])
        finish(store, "j2")  # chunk 0 done; chunk 1 not started
        thread, seen = wait_in_thread(store, meta, 20.0, ends)
        time.sleep(0.3)
        assert store.cancel("j2") is not None
        store.record_chunk("j2", 1, [Outcome(1, RowStatus.NOT_PROCESSED, None, 2)])
        cancelled_at = time.perf_counter()
        thread.join(10)
        result = seen["meta"]
        assert isinstance(result, JobMeta)
        assert result.state.value == "cancelled"
        assert isinstance(seen["at"], float)
        assert seen["at"] - cancelled_at < WOKEN_POLL_S / 2
    finally:
        ends.close()


def test_without_a_listener_a_waiting_request_still_sees_the_end(store: JobStore) -> None:
    ends = JobEnds(store)
    ends.close()  # never listens: the waiter polls as before
    meta = queued(store, "j3")
    thread, seen = wait_in_thread(store, meta, 20.0, ends)
    time.sleep(0.3)
    finished_at = time.perf_counter()
    finish(store, "j3")
    thread.join(10)
    result = seen["meta"]
    assert isinstance(result, JobMeta)
    assert result.state.value == "completed"
    assert isinstance(seen["at"], float)
    assert seen["at"] - finished_at < 0.5


def test_the_listener_comes_back_after_its_connection_is_killed(store: JobStore) -> None:
    ends = JobEnds(store)
    try:
        listening(ends, store)
        # Kill the listener's connection (a Redis restart or a dropped link looks the same).
        [listener] = [
            c for c in store.redis.client_list() if c["name"] == client_name(store.prefix)
        ]
        assert store.redis.client_kill_filter(_id=listener["id"]) == 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            again = [c for c in store.redis.client_list() if c["name"] == client_name(store.prefix)]
            if again and again[0]["id"] != listener["id"] and ends.listening:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the listener did not subscribe again")
        meta = queued(store, "j4")
        thread, seen = wait_in_thread(store, meta, 20.0, ends)
        time.sleep(0.3)
        finish(store, "j4")
        thread.join(10)
        result = seen["meta"]
        assert isinstance(result, JobMeta)
        assert result.state.value == "completed"
    finally:
        ends.close()


def test_an_end_published_while_the_listener_reconnects_is_still_seen(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message published while the listener is not subscribed is lost; once subscribed
    again, it wakes every waiter to read its job once (its own reads are 30 s apart here)."""
    monkeypatch.setattr(preferences, "WOKEN_POLL_S", 30.0)
    ends = JobEnds(store)
    try:
        listening(ends, store)
        meta = queued(store, "j5")
        thread, seen = wait_in_thread(store, meta, 20.0, ends)
        time.sleep(0.3)
        [listener] = [
            c for c in store.redis.client_list() if c["name"] == client_name(store.prefix)
        ]
        store.redis.client_kill_filter(_id=listener["id"])
        finish(store, "j5")  # published to nobody, or heard: either way seen
        thread.join(10)
        assert not thread.is_alive()
        result = seen["meta"]
        assert isinstance(result, JobMeta)
        assert result.state.value == "completed"
    finally:
        ends.close()


def test_a_user_that_may_not_publish_still_finishes_its_jobs(redis_url: str) -> None:
    """Publishing the end is best effort: a Redis user without channel rights (ACL) must
    not leave the job half-recorded."""
    admin = Redis.from_url(redis_url)
    user, password = f"claimpay-nopub-{secrets.token_hex(3)}", secrets.token_hex(16)
    admin.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        commands=["+@all"],
        reset_channels=True,
    )
    restricted = Redis.from_url(redis_url, username=user, password=password)
    store = JobStore(restricted, f"it-ends-{secrets.token_hex(4)}", ttl_s=60)
    try:
        queued(store, "j6")
        assert store.record_chunk("j6", 0, [Outcome(0, RowStatus.CREATED, None, 1)]) is True
        meta = store.meta("j6")
        assert meta is not None
        assert meta.state.value == "completed"
    finally:
        restricted.close()
        admin.acl_deluser(user)
        keys = list(admin.scan_iter(f"{store.prefix}:*"))
        if keys:
            admin.delete(*keys)
        admin.close()
