"""Chunk leases kept alive while a chunk runs, so a dead worker's chunks are found fast.

One thread per worker process renews every lease the process holds, each every third of
its TTL: a chunk takes milliseconds, a thread started and joined for each cost more.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from claimpay.jobstore import JobStore

log = logging.getLogger("claimpay.worker")


def lease_owner() -> str:
    """A name for this claim: host, process and a random part (a retry claims anew)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class _Lease:
    store: JobStore
    job_id: str
    chunk_no: int
    owner: str
    ttl_s: int
    due: float
    """When (monotonic) it is renewed next."""

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
        self._leases: dict[str, _Lease] = {}
        self._pid = 0

    @contextlib.contextmanager
    def hold(
        self, store: JobStore, job_id: str, chunk_no: int, owner: str, ttl_s: int
    ) -> Iterator[None]:
        """Renew the chunk's lease every third of its TTL until the block ends."""
        lease = _Lease(store, job_id, chunk_no, owner, ttl_s, time.monotonic() + ttl_s / 3)
        with self._changed:
            self._start_once()
            self._leases[owner] = lease
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._leases.pop(owner, None)

    def held(self) -> int:
        """How many leases it is renewing now."""
        with self._lock:
            return len(self._leases)

    def _start_once(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                nearest = min((lease.due for lease in self._leases.values()), default=None)
                if nearest is None or nearest > now:
                    self._changed.wait(None if nearest is None else nearest - now)
                    continue
                # Under the lock, so no lease is renewed once its block has ended.
                for lease in [lease for lease in self._leases.values() if lease.due <= now]:
                    if not lease.renew():
                        del self._leases[lease.owner]


_keeper = LeaseKeeper()
os.register_at_fork(after_in_child=_keeper._reset)


def leased(
    store: JobStore, job_id: str, chunk_no: int, owner: str, ttl_s: int
) -> contextlib.AbstractContextManager[None]:
    """Keep the chunk's lease alive (renewed every third of its TTL) while the block runs."""
    return _keeper.hold(store, job_id, chunk_no, owner, ttl_s)
