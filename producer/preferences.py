"""RFC 7240 `Prefer` header: the `wait` preference of the synchronous mode and of a
status request that waits for its job to end."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread

from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore
from producer.jobends import JobEnds

POLL_S = 0.01
"""How often a waiting request reads its job's state at first: one Redis read instead of
the whole request a polling client would send, and the end seen within 10 ms."""
POLL_MAX_S = 0.25
SLOW_DOWN_AFTER_S = 5.0
"""A wait that has lasted this long reads the state less and less often, up to every
`POLL_MAX_S`: many long waits must not load Redis and the API's threads."""

WOKEN_POLL_S = 1.0
"""How often a waiting request reads its job's state while the job's end is published to
it (`producer.jobends`): only to survive a lost message."""
GONE_CHECK_S = 0.1
"""How often a waiting request asks whether its client has gone."""

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
    ends: JobEnds | None = None,
) -> JobMeta:
    """The job once it has ended (completed, cancelled), or as it is after `wait_s`, or
    when `gone()` says the client has disconnected (asked every `GONE_CHECK_S`).

    With `ends` listening, the state is read when the job's end is published and else
    every `WOKEN_POLL_S` only (in case a message was lost); without, every `POLL_S` at
    first, then less and less often."""
    if not wait_s or meta.state.terminal:
        return meta
    deadline = anyio.current_time() + wait_s
    with ends.watch(meta.job_id) if ends is not None else contextlib.nullcontext() as ended:
        # The job may have ended before the watch began: read it once more at once.
        meta = await _latest(store, meta)
        poller = _Poller(anyio.current_time())
        next_read = poller.next_read(anyio.current_time(), ends)
        client_gone = False
        while not meta.state.terminal and (now := anyio.current_time()) < deadline:
            if (ended is not None and ended.is_set()) or now >= next_read:
                if ended is not None:
                    ended.clear()
                meta = await _latest(store, meta)
                next_read = poller.next_read(anyio.current_time(), ends)
                continue
            if gone is not None and await gone():
                client_gone = True
                break
            pause = min(next_read, deadline) - now
            with anyio.move_on_after(min(pause, GONE_CHECK_S)):
                if ended is None:
                    await anyio.sleep_forever()
                else:
                    await ended.wait()
        if not meta.state.terminal and not client_gone and next_read > deadline:
            meta = await _latest(store, meta)  # as it is at the deadline, not a read ago
    return meta


async def _latest(store: JobStore, meta: JobMeta) -> JobMeta:
    latest = await anyio.to_thread.run_sync(store.meta, meta.job_id)
    return latest or meta


class _Poller:
    """When a waiting request reads its job's state next."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.pause = POLL_S

    def next_read(self, now: float, ends: JobEnds | None) -> float:
        if ends is not None and ends.listening:
            return now + WOKEN_POLL_S
        if now - self.started > SLOW_DOWN_AFTER_S:
            self.pause = min(POLL_MAX_S, self.pause * 1.5)
        return now + self.pause
