"""Retry delays: exponential, capped, fully jittered, reproducible with a seeded RNG."""

from __future__ import annotations

import random

import pytest

from worker.backoff import compute_backoff


@pytest.mark.parametrize("attempt", range(12))
def test_delay_stays_within_the_exponential_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(60.0, 0.5 * 2**attempt)
    delays = [compute_backoff(attempt, 0.5, 60.0, rng) for _ in range(200)]
    assert all(0 <= delay <= ceiling for delay in delays)


@pytest.mark.parametrize("attempt", [7, 20, 62, 63, 1000, 10**6])
def test_delay_is_capped_at_the_maximum(attempt: int) -> None:
    rng = random.Random(1)
    delays = [compute_backoff(attempt, 1.0, 60.0, rng) for _ in range(200)]
    assert all(0 <= delay <= 60.0 for delay in delays)
    assert max(delays) > 50.0  # the cap is the ceiling, not an accident of small attempts


def test_delays_spread_over_the_whole_range() -> None:
    rng = random.Random(42)
    delays = [compute_backoff(4, 1.0, 60.0, rng) for _ in range(500)]
    assert min(delays) < 2.0
    assert max(delays) > 14.0


def test_same_seed_gives_the_same_delays() -> None:
    first = [compute_backoff(a, 1.0, 30.0, random.Random(7)) for a in range(8)]
    again = [compute_backoff(a, 1.0, 30.0, random.Random(7)) for a in range(8)]
    assert first == again


def test_default_random_source_respects_the_bounds() -> None:
    assert all(0 <= compute_backoff(3, 0.25, 1.0) <= 1.0 for _ in range(100))
