"""RFC 7240 `Prefer` header: the `wait` preference of the synchronous mode and of a
status request that waits for its job to end."""

from __future__ import annotations

import re

import anyio
import anyio.to_thread

from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore

POLL_S = 0.01
"""How often a waiting request reads its job's state: one Redis read, far cheaper than
the status request a client would otherwise send."""

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def preferred_wait_s(prefer: str | None, max_wait_s: float) -> float:
    """Seconds to wait for the job before answering 202 (0 when not asked), at most
    `max_wait_s`."""
    if not prefer:
        return 0.0
    match = _WAIT.search(prefer)
    return min(float(match.group(1)), max_wait_s) if match else 0.0


def preference_applied(wait_s: float) -> dict[str, str]:
    """The `Preference-Applied` header for a wait that was honoured."""
    return {"Preference-Applied": f"wait={int(wait_s)}"} if wait_s > 0 else {}


async def until_terminal(store: JobStore, meta: JobMeta, wait_s: float) -> JobMeta:
    """The job once it has ended (completed, cancelled), or as it is after `wait_s`."""
    deadline = anyio.current_time() + wait_s
    while wait_s and not meta.state.terminal and anyio.current_time() < deadline:
        await anyio.sleep(POLL_S)
        latest = await anyio.to_thread.run_sync(store.meta, meta.job_id)
        meta = latest or meta
    return meta
