"""RFC 7240 `Prefer` header: the `wait` preference of the synchronous mode."""

from __future__ import annotations

import re

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
