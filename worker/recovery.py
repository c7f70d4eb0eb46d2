"""Recovery: find chunks that no live worker will ever finish and queue them again.

Two cases. A chunk *orphaned* by a worker that died while applying it: claimed, not
recorded, and its lease has lapsed (leases are renewed every third of `lease_ttl_s`).
A job *stalled* because messages were lost (say, Redis restarted without them), or because
the chunk that was to queue the next waiting one (`job_window_chunks`) never did: no
progress for `stuck_after_s` while its queue is empty (or for `stuck_busy_after_s`,
whatever the queue). Its unfinished chunks that are neither leased nor waiting are queued
again, and the window is filled up from the waiting ones. Queuing a chunk twice is
harmless: the claim and the ledger make the second a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from claimpay.jobstore import JobStore
from claimpay.messaging import Enqueuer
from claimpay.settings import Settings

log = logging.getLogger("claimpay.recovery")


def sweep(
    store: JobStore,
    enqueuer: Enqueuer,
    settings: Settings,
    queue_length: Callable[[], int],
    now: float | None = None,
) -> dict[str, list[int]]:
    """One pass over the unfinished jobs; returns the chunks queued again, by job. Idle
    times are measured on Redis's clock (`now`, default its `TIME`), as the stamps are."""
    now = store.now() if now is None else now
    requeued: dict[str, list[int]] = {}
    for job_id in store.active_jobs():
        meta = store.meta(job_id)
        if meta is None or meta.state.terminal:
            store.forget_active(job_id)
            continue
        states = store.chunk_states(job_id)
        chunks = states.claimed - states.leased
        idle_s = now - meta.progress_ts
        if idle_s > settings.stuck_after_s and (
            idle_s > settings.stuck_whatever_the_queue_s() or queue_length() == 0
        ):
            chunks |= states.unfinished - states.leased - states.waiting
            # The chunks in flight queue the next waiting ones as they finish: only the
            # window's empty places are filled (a slow job keeps its window).
            room = meta.window - len(states.unfinished - states.waiting)
            if room > 0 and states.waiting:
                chunks.update(store.take_waiting(job_id, room))
        if chunks:
            ordered = sorted(chunks)
            enqueuer.enqueue_chunks(job_id, ordered, [None] * len(ordered), queue=meta.queue)
            store.note_requeued(job_id, ordered)
            requeued[job_id] = ordered
            log.warning("job %s: queued %d chunk(s) again: %s", job_id, len(ordered), ordered)
    return requeued


class Sweeper:
    """Runs `sweep` every `sweep_interval_s` in a background thread of the worker's main
    process; a Redis lock lets one worker of the deployment sweep per interval."""

    def __init__(
        self,
        store: JobStore,
        enqueuer: Enqueuer,
        settings: Settings,
        queue_length: Callable[[], int],
    ) -> None:
        self._store = store
        self._enqueuer = enqueuer
        self._settings = settings
        self._queue_length = queue_length
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claimpay-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = self._settings.sweep_interval_s
        while not self._stop.wait(interval):
            try:
                if self._store.acquire_sweep_lock(interval * 0.9):
                    sweep(self._store, self._enqueuer, self._settings, self._queue_length)
            except Exception:  # a Redis blip: the next interval tries again
                log.warning("recovery sweep failed", exc_info=True)
