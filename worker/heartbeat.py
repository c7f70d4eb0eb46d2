"""Chunk leases kept alive while a chunk runs, so a dead worker's chunks are found fast."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator

from claimpay.jobstore import JobStore

log = logging.getLogger("claimpay.worker")


def lease_owner() -> str:
    """A name for this claim: host, process and a random part (a retry claims anew)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def leased(store: JobStore, job_id: str, chunk_no: int, owner: str, ttl_s: int) -> Iterator[None]:
    """Renew the chunk's lease every third of its TTL until the block ends."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                if not store.renew_lease(job_id, chunk_no, owner, ttl_s):
                    log.warning("job %s chunk %s: lease lost", job_id, chunk_no)
                    return
            except Exception:  # Redis blips: try again at the next beat
                log.warning("job %s chunk %s: lease renewal failed", job_id, chunk_no)

    beat = threading.Thread(target=renew, name=f"lease-{job_id[:8]}-{chunk_no}", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
