"""The webhook sender of a worker node: threads of its main process, never its pool.

One dispatcher thread claims due webhooks from the outbox (`worker.outbox`) while a
delivery thread is idle; `webhook_concurrency` delivery threads each run one attempt at a
time, bounded by `webhook_timeout_s`. So however many receivers are slow, chunks keep
being applied: those run in the pool's processes, which never send a webhook. A failed
attempt is tried again with backoff and jitter, `webhook_max_retries` times.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from claimpay.jobstore import JobStore
from claimpay.settings import Settings
from worker.backoff import compute_backoff
from worker.outbox import Outbox, Pending
from worker.webhooks import WebhookFailed, deliver

log = logging.getLogger("claimpay.webhooks")

POLL_S = 0.2
"""How often an idle dispatcher looks for due webhooks."""
LEASE_MARGIN_S = 30.0
"""A claimed webhook is due again this long after its attempt's deadline (its sender died)."""

Deliver = Callable[[JobStore, Settings, str], bool]


class WebhookSender:
    """Delivers the deployment's due webhooks from background threads of this process."""

    def __init__(self, store: JobStore, settings: Settings, send: Deliver = deliver) -> None:
        self._store = store
        self._settings = settings
        self._send = send
        self._outbox = Outbox(store)
        self._stop = threading.Event()
        self._work: queue.Queue[Pending] = queue.Queue()
        self._idle = settings.webhook_concurrency
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._dispatch, name="claimpay-webhooks", daemon=True)
        ] + [
            threading.Thread(target=self._deliver, name=f"claimpay-webhook-{n}", daemon=True)
            for n in range(settings.webhook_concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop claiming. Attempts in flight are not waited for: their webhooks become due
        again after their lease, for another node (a receiver may get one twice)."""
        self._stop.set()
        self._threads[0].join(timeout=5)

    def _dispatch(self) -> None:
        lease_s = self._settings.webhook_timeout_s + LEASE_MARGIN_S
        while not self._stop.is_set():
            with self._lock:
                idle = self._idle
            try:
                claimed = self._outbox.claim(idle, lease_s)
            except Exception:  # a Redis blip: the next poll tries again
                log.warning("webhook outbox unreadable", exc_info=True)
                claimed = []
            for pending in claimed:
                with self._lock:
                    self._idle -= 1
                self._work.put(pending)
            if len(claimed) < idle or idle == 0:
                self._stop.wait(POLL_S)

    def _deliver(self) -> None:
        while not self._stop.is_set():
            try:
                pending = self._work.get(timeout=POLL_S)
            except queue.Empty:
                continue
            try:
                self._attempt(pending)
            except Exception:  # Redis lost while settling: the lease makes it due again
                log.warning("job %s: webhook attempt not settled", pending.job_id, exc_info=True)
            finally:
                with self._lock:
                    self._idle += 1

    def _attempt(self, pending: Pending) -> None:
        settings = self._settings
        try:
            self._send(self._store, settings, pending.job_id)
        except Exception as exc:
            # A receiver's failure, or anything unexpected (its type only: no message).
            reason = str(exc) if isinstance(exc, WebhookFailed) else type(exc).__name__
            if pending.attempt > settings.webhook_max_retries:
                log.warning(
                    "job %s: webhook given up after %d attempts (%s)",
                    pending.job_id,
                    pending.attempt,
                    reason,
                )
                self._outbox.settle(pending)
                return
            delay = compute_backoff(
                pending.attempt - 1, settings.retry_backoff_s, settings.retry_backoff_max_s
            )
            log.info(
                "job %s: webhook attempt %d failed (%s); next in %.1fs",
                pending.job_id,
                pending.attempt,
                reason,
                delay,
            )
            self._outbox.settle(pending, retry_in_s=delay)
            return
        self._outbox.settle(pending)
