"""Retry delays: exponential backoff with full jitter."""

from __future__ import annotations

import random


def compute_backoff(
    attempt: int, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number `attempt` (0-based): uniform in
    [0, min(max_s, base_s * 2**attempt)], so retrying workers spread out."""
    ceiling = min(max_s, base_s * (2 ** min(attempt, 62)))
    return (rng or random).uniform(0, ceiling)
