"""RFC 7240 `Prefer` header: the `wait` preference of the synchronous mode and of a
status request that waits for its job to end."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread

from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore

POLL_S = 0.01
"""How often a waiting request reads its job's state at first: one Redis read instead of
the whole request a polling client would send, and the end seen within 10 ms."""
POLL_MAX_S = 0.25
SLOW_DOWN_AFTER_S = 5.0
"""A wait that has lasted this long reads the state less and less often, up to every
`POLL_MAX_S`: many long waits must not load Redis and the API's threads."""

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


async def until_terminal(
    store: JobStore,
    meta: JobMeta,
    wait_s: float,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> JobMeta:
    """The job once it has ended (completed, cancelled), or as it is after `wait_s`, or
    when `gone()` says the client has disconnected."""
    started = anyio.current_time()
    deadline = started + wait_s
    pause = POLL_S
    while wait_s and not meta.state.terminal and anyio.current_time() < deadline:
        await anyio.sleep(min(pause, max(0.0, deadline - anyio.current_time())))
        latest = await anyio.to_thread.run_sync(store.meta, meta.job_id)
        meta = latest or meta
        if gone is not None and await gone():
            break
        if anyio.current_time() - started > SLOW_DOWN_AFTER_S:
            pause = min(POLL_MAX_S, pause * 1.5)
    return meta
