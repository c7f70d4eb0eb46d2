"""Wakes the requests that wait for a job to end (`Prefer: wait`) as soon as it ends.

A worker that finishes a job, and a cancel that ends one, publish the job's ID on the
store's `ended` channel (`claimpay.keys.StoreKeys.ended`, from the same Lua script that
changes its state). One thread per API process listens and sets the events of the
requests waiting on that job. A waiting request then reads the job's state when it is
woken, and otherwise only now and then (`until_terminal`): polling every 10 ms cost the
API about 7% of a core per waiting client, taken from the workers on a shared machine,
and one tenant's waits from every other tenant.

Pub/sub is fire-and-forget: a message published while the listener is reconnecting is
lost, so `listening` tells the waiters whether to rely on it (they poll fast when not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Iterator

from redis import ConnectionPool, Redis
from redis.exceptions import RedisError

from claimpay.jobqueries import text
from claimpay.jobstore import JobStore

log = logging.getLogger("claimpay.producer")

RECONNECT_S = (0.1, 0.5, 1.0, 2.0)
"""Pauses before the listener's successive reconnection attempts (the last repeats)."""
CLIENT_NAME = "claimpay-job-ends"
"""The listener's connection's name in Redis (`CLIENT LIST`), before the key prefix."""
READ_TIMEOUT_S = 0.5
"""How long one read of the channel blocks: the listener's stop is seen this fast."""


class JobEnds:
    """The `ended` channel's listener and the events of the requests waiting on it."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        """The running listener's stop (each listener thread has its own)."""
        self._listening = threading.Event()

    @property
    def listening(self) -> bool:
        """True while subscribed: a job's end is then seen without reading its state."""
        return self._listening.is_set()

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set when `job_id` ends, while the block runs (in the event loop)."""
        self._start()
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.setdefault(job_id, set()).add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                waiters = self._waiting.get(job_id)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiting[job_id]

    def close(self) -> None:
        """Stop listening (the app's shutdown), without waiting: the thread ends after its
        current read. A later wait starts a new listener."""
        with self._lock:
            self._stop.set()
            self._thread = None
            self._listening.clear()

    def ended(self, job_id: str) -> None:
        """Wake the requests waiting on `job_id` (called by the listener)."""
        with self._lock:
            waiters = list(self._waiting.get(job_id, ()))
        self._wake(waiters)

    def _wake_all(self) -> None:
        """Every waiting request reads its job once more: ends published while the
        listener was not subscribed are lost, and a read finds them."""
        with self._lock:
            waiters = [waiter for found in self._waiting.values() for waiter in found]
        self._wake(waiters)

    @staticmethod
    def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]) -> None:
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(event.set)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop = stop = threading.Event()
            self._thread = threading.Thread(
                target=self._listen, args=(stop,), name="claimpay-job-ends", daemon=True
            )
            self._thread.start()

    def _listen(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                self._subscribed(stop)
                failures = 0
            except Exception as exc:  # Redis down or gone; never leave the thread
                self._listening.clear()
                pause = RECONNECT_S[min(failures, len(RECONNECT_S) - 1)]
                failures += 1
                log.warning(
                    "job-end listener: %s; waiting requests poll (again in %.1fs)",
                    type(exc).__name__,
                    pause,
                )
                stop.wait(pause)

    def _subscribed(self, stop: threading.Event) -> None:
        """Listen until stopped; raises what Redis raises."""
        pool = self._store.redis.connection_pool
        # A connection of its own, named so that it shows as such in `CLIENT LIST`.
        named = ConnectionPool(
            connection_class=pool.connection_class,
            max_connections=1,
            **{**pool.connection_kwargs, "client_name": client_name(self._store.prefix)},
        )
        pubsub = Redis(connection_pool=named).pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._store.store_keys.ended)
            # The subscription is confirmed by the first reply: only then can no end be
            # missed, and the waiters stop polling fast.
            reply = pubsub.get_message(timeout=READ_TIMEOUT_S)
            if reply is None or reply.get("type") != "subscribe":
                raise RedisError("subscription not confirmed")
            self._listening.set()
            self._wake_all()  # whatever ended before the subscription is read now
            while not stop.is_set():
                message = pubsub.get_message(timeout=READ_TIMEOUT_S)
                kind = message.get("type") if message is not None else None
                if kind == "message":
                    self.ended(text(message["data"]))
                elif kind == "subscribe":
                    # redis-py reconnected and subscribed again by itself: what ended
                    # in between was not heard.
                    self._wake_all()
        finally:
            if not stop.is_set():
                self._listening.clear()
            with contextlib.suppress(RedisError, OSError):
                pubsub.close()
            named.disconnect()


def client_name(prefix: str) -> str:
    """`CLIENT_NAME:<prefix>`, each character Redis refuses in a name (blanks) as `_`."""
    return f"{CLIENT_NAME}:{re.sub(r'[^!-~]', '_', prefix)}"
