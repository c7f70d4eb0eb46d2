"""Chunk leases kept alive while a chunk runs *and makes progress*, so the chunks of a dead
or stuck worker are found fast.

One thread per worker process renews every lease the process holds, each every third of
its TTL: a chunk takes milliseconds, a thread started and joined for each cost more. A lease
proves progress, not only a live process: once a chunk's database call has not returned
within its bound (`CLAIMPAY_DB_CALL_TIMEOUT_S`), the lease is no longer renewed (it lapses
and the recovery sweep hands the chunk to another worker), the call is cancelled, and the
node is marked stalled in Redis (`claimpay worker-health` fails for it) until the call
returns. A late return changes nothing: the ledger and the job store count a chunk once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from claimpay.jobstore import JobStore

log = logging.getLogger("claimpay.worker")


def lease_owner() -> str:
    """A name for this claim: host, process and a random part (a retry claims anew)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Lease:
    """One chunk's lease, renewed by the keeper thread while its block runs."""

    store: JobStore
    job_id: str
    chunk_no: int
    owner: str
    ttl_s: int
    due: float
    """When (monotonic) it is renewed next."""
    call_timeout_s: float | None = None
    """Longest database call that still counts as progress (None: no bound)."""
    node: str | None = None
    """The worker node (`celery@host`) marked stalled in the job store, if named."""
    on_stall: Callable[[], object] | None = None
    """Cancels the stuck call (run on its own thread: it may block)."""
    call_started: float | None = None
    """When (monotonic) the current database call began; None between calls."""
    stalled: bool = False
    _keeper: LeaseKeeper | None = field(default=None, repr=False)

    @contextlib.contextmanager
    def database_call(self) -> Iterator[None]:
        """Mark the block as one database call: the lease counts it as progress only
        while it is shorter than `call_timeout_s`."""
        keeper = self._keeper
        if keeper is None:
            yield
            return
        with keeper._changed:
            self.call_started = time.monotonic()
            keeper._wake_before(self.stall_at())
        try:
            yield
        finally:
            with keeper._changed:
                self.call_started = None

    def stall_at(self) -> float | None:
        """When (monotonic) the current call stops counting as progress."""
        if self.stalled or self.call_started is None or self.call_timeout_s is None:
            return None
        return self.call_started + self.call_timeout_s

    def renew(self) -> bool:
        """Renew it; False once it is lost (the chunk went to another worker)."""
        try:
            if not self.store.renew_lease(self.job_id, self.chunk_no, self.owner, self.ttl_s):
                log.warning("job %s chunk %s: lease lost", self.job_id, self.chunk_no)
                return False
        except Exception:  # Redis blips: try again at the next beat
            log.warning("job %s chunk %s: lease renewal failed", self.job_id, self.chunk_no)
        self.due = time.monotonic() + self.ttl_s / 3
        return True

    def stall(self) -> None:
        """The call outlived its bound: stop renewing, cancel it, mark the node."""
        self.stalled = True
        log.warning(
            "job %s chunk %s: database call running for over %ss; lease given up",
            self.job_id,
            self.chunk_no,
            self.call_timeout_s,
        )
        if self.on_stall is not None:
            threading.Thread(target=self.on_stall, name="cancel-stuck-call", daemon=True).start()
        self.mark()

    def mark(self) -> None:
        """Keep the node's stalled mark alive (renewed like the lease would have been)."""
        self.due = time.monotonic() + self.ttl_s / 3
        if self.node is None:
            return
        with contextlib.suppress(Exception):  # Redis blips: the next beat marks again
            self.store.mark_stalled(self.node, self.owner, max(1, round(self.ttl_s)))

    def unmark(self) -> None:
        if self.node is not None and self.stalled:
            with contextlib.suppress(Exception):  # the mark expires on its own
                self.store.clear_stalled(self.node, self.owner)


IDLE_BEAT_S = 1.0
"""How often the keeper wakes while it holds no lease."""


class LeaseKeeper:
    """Renews the leases of the chunks this process runs, from one thread, started on
    first use in each process (a forked child starts its own)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """A fresh state: at start, and in a forked child, which must not inherit the
        parent's leases, nor its lock in whatever state the keeper thread left it."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._leases: dict[str, Lease] = {}
        self._pid = 0
        self._wake_at: float | None = None
        """When (monotonic) the waiting keeper wakes next; None before its first wait."""

    def _wake_before(self, moment: float | None) -> None:
        """Under the lock: wake the keeper now if it would sleep past `moment`. A chunk's
        lease and its calls are due long after the keeper's next beat, so most chunks wake
        it never (a wake-up per lease and per call took about 4% of a pool process)."""
        if moment is not None and (self._wake_at is None or moment < self._wake_at):
            self._changed.notify()

    @contextlib.contextmanager
    def hold(
        self,
        store: JobStore,
        job_id: str,
        chunk_no: int,
        owner: str,
        ttl_s: int,
        *,
        call_timeout_s: float | None = None,
        node: str | None = None,
        on_stall: Callable[[], object] | None = None,
    ) -> Iterator[Lease]:
        """Renew the chunk's lease every third of its TTL until the block ends, or until a
        database call of the block (`Lease.database_call`) outlives `call_timeout_s`."""
        lease = Lease(
            store,
            job_id,
            chunk_no,
            owner,
            ttl_s,
            time.monotonic() + ttl_s / 3,
            call_timeout_s,
            node,
            on_stall,
            _keeper=self,
        )
        with self._changed:
            self._start_once()
            self._leases[owner] = lease
            self._wake_before(lease.due)
        try:
            yield lease
        finally:
            with self._changed:
                self._leases.pop(owner, None)
                lease.unmark()

    def held(self) -> int:
        """How many leases it is renewing now."""
        with self._lock:
            return sum(not lease.stalled for lease in self._leases.values())

    def _start_once(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                moments = [lease.due for lease in self._leases.values()]
                moments += [t for lease in self._leases.values() if (t := lease.stall_at())]
                # Idle, it still beats now and then, so that a new lease, due a third of its
                # TTL from now, rarely needs to wake it.
                nearest = min(moments, default=now + IDLE_BEAT_S)
                if nearest > now:
                    self._wake_at = nearest
                    self._changed.wait(nearest - now)
                    continue
                # Under the lock, so no lease is renewed once its block has ended.
                for lease in list(self._leases.values()):
                    stall_at = lease.stall_at()
                    if stall_at is not None and stall_at <= now:
                        lease.stall()
                    elif lease.due > now:
                        continue
                    elif lease.stalled:
                        lease.mark()
                    elif not lease.renew():
                        del self._leases[lease.owner]


_keeper = LeaseKeeper()
os.register_at_fork(after_in_child=_keeper._reset)


leased = _keeper.hold
"""Keep the chunk's lease alive (renewed every third of its TTL) while the block runs
and its database calls return within `call_timeout_s` (the process's `LeaseKeeper`)."""
