"""Leases are renewed by one thread per process while their chunks run, never after."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from worker.heartbeat import LeaseKeeper


class Store:
    """Records renewals; `lost` names the owners whose lease is gone."""

    def __init__(self, lost: tuple[str, ...] = ()) -> None:
        self.renewals: list[tuple[str, int, str]] = []
        self.lost = set(lost)
        self.threads: set[str] = set()

    def renew_lease(self, job_id: str, chunk_no: int, owner: str, ttl_s: int) -> bool:
        self.renewals.append((job_id, chunk_no, owner))
        self.threads.add(threading.current_thread().name)
        return owner not in self.lost


def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_leases_are_renewed_every_third_of_their_ttl_by_one_thread() -> None:
    keeper, store = LeaseKeeper(), Store()
    with keeper.hold(store, "j", 0, "a", ttl_s=0.3), keeper.hold(store, "j", 1, "b", 0.3):  # type: ignore[arg-type]
        assert keeper.held() == 2
        wait_for(lambda: {r[2] for r in store.renewals} == {"a", "b"} and len(store.renewals) >= 6)
    assert keeper.held() == 0
    assert store.threads == {"lease-keeper"}


def test_no_renewal_after_the_block_ends() -> None:
    keeper, store = LeaseKeeper(), Store()
    with keeper.hold(store, "j", 0, "a", ttl_s=0.15):  # type: ignore[arg-type]
        wait_for(lambda: len(store.renewals) >= 1)
    ended = len(store.renewals)
    time.sleep(0.3)
    assert len(store.renewals) == ended


def test_a_lost_lease_is_no_longer_renewed_while_others_are() -> None:
    keeper, store = LeaseKeeper(), Store(lost=("a",))
    with keeper.hold(store, "j", 0, "a", 0.15), keeper.hold(store, "j", 1, "b", 0.15):  # type: ignore[arg-type]
        wait_for(lambda: sum(r[2] == "b" for r in store.renewals) >= 4)
        assert sum(r[2] == "a" for r in store.renewals) == 1
        assert keeper.held() == 1


def test_a_forked_child_starts_with_no_leases_and_a_free_lock() -> None:
    import os

    from worker import heartbeat

    store = Store()
    with heartbeat.leased(store, "j", 0, "parent", ttl_s=30):  # type: ignore[arg-type]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what it inherited, then leave at once
            held = heartbeat._keeper.held()
            free = heartbeat._keeper._lock.acquire(timeout=1)
            os.write(write, f"{held} {free}".encode())
            os._exit(0)
        os.close(write)
        answer = os.read(read, 100).decode()
        os.waitpid(pid, 0)
    assert answer == "0 True"


class StallStore(Store):
    """Also records the node's stalled marks."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, set[str]] = {}

    def mark_stalled(self, node: str, owner: str, ttl_s: int) -> None:
        self.marks.setdefault(node, set()).add(owner)

    def clear_stalled(self, node: str, owner: str) -> None:
        self.marks.get(node, set()).discard(owner)


def test_a_database_call_past_its_bound_stops_the_renewals_cancels_and_marks_the_node() -> None:
    keeper, store = LeaseKeeper(), StallStore()
    cancelled = threading.Event()
    with (
        keeper.hold(
            store,  # type: ignore[arg-type]
            "j",
            0,
            "a",
            ttl_s=0.3,  # type: ignore[arg-type]
            call_timeout_s=0.2,
            node="claimpay@h1-1",
            on_stall=cancelled.set,
        ) as lease,
        lease.database_call(),
    ):
        assert cancelled.wait(5), "the stuck call was never cancelled"
        wait_for(lambda: store.marks.get("claimpay@h1-1") == {"a"})
        assert keeper.held() == 0
        renewed = len(store.renewals)
        time.sleep(0.3)  # three renewal periods: none may come
        assert len(store.renewals) == renewed
    assert store.marks["claimpay@h1-1"] == set()


def test_short_database_calls_keep_the_lease_renewed() -> None:
    keeper, store = LeaseKeeper(), StallStore()
    with keeper.hold(
        store,  # type: ignore[arg-type]
        "j",
        0,
        "a",
        ttl_s=0.15,  # type: ignore[arg-type]
        call_timeout_s=0.2,
        node="n",
        on_stall=lambda: pytest.fail("cancelled a call within its bound"),
    ) as lease:
        for _ in range(8):
            with lease.database_call():
                time.sleep(0.05)
        wait_for(lambda: len(store.renewals) >= 3)
        assert keeper.held() == 1
    assert store.marks == {}


class _CountingCondition:
    """The keeper's condition, counting the wake-ups it is asked for."""

    def __init__(self, inner: threading.Condition) -> None:
        self.inner = inner
        self.notified = 0

    def __enter__(self) -> Any:
        return self.inner.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.inner.__exit__(*exc)

    def notify(self) -> None:
        self.notified += 1
        self.inner.notify()

    def wait(self, timeout: float | None = None) -> bool:
        return self.inner.wait(timeout)


def test_a_chunk_due_after_the_keeper_s_next_beat_does_not_wake_it() -> None:
    keeper, store = LeaseKeeper(), Store()
    counting = _CountingCondition(keeper._changed)
    keeper._changed = counting  # type: ignore[assignment]
    with keeper.hold(store, "j", 0, "a", ttl_s=30, call_timeout_s=60):  # type: ignore[arg-type]
        pass  # the first lease starts the keeper: it may be woken once
    wait_for(lambda: keeper._wake_at is not None)
    woken = counting.notified
    for chunk in range(1, 20):
        held = keeper.hold(store, "j", chunk, f"o{chunk}", 30, call_timeout_s=60)  # type: ignore[arg-type]
        with held as lease, lease.database_call():
            pass
    assert counting.notified == woken


def test_a_call_bound_before_the_keeper_s_next_beat_wakes_it() -> None:
    keeper, store = LeaseKeeper(), Store()
    stalled: list[str] = []
    held = keeper.hold(
        store,  # type: ignore[arg-type]
        "j",
        0,
        "a",
        30,
        call_timeout_s=0.05,
        on_stall=lambda: stalled.append("x"),
    )
    with held as lease:
        wait_for(lambda: keeper._wake_at is not None)  # the keeper waits for the lease's beat
        with lease.database_call():
            wait_for(lambda: stalled == ["x"], timeout_s=2.0)
        assert lease.stalled
