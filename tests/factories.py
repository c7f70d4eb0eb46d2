"""Row and settings factories: realistic prompt-pay rules, as a client would send them."""

from __future__ import annotations

import random
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from claimpay.settings import Settings

API_KEY = "test-key-all-databases"
NARROW_KEY = "test-key-acme-only"
JWT_SECRET = "test-secret-long-enough-for-hs256-and-hs512-0123456789abcdefghijklmnopq"

UTC_OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
"""Every fixed UTC offset a date-time may carry, to the minute (hypothesis)."""

_DURATIONS = [(14, "D"), (15, "D"), (30, "D"), (45, "D"), (1, "M"), (1, "Y")]


def make_row(key: int | None, rng: random.Random | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid ClaimPromptPay row with the seed's exact JSON names."""
    rng = rng or random.Random(key)
    duration, unit = rng.choice(_DURATIONS)
    row: dict[str, Any] = {
        "claimPromptPay_Key": key,
        "group_ID": f"GRP{rng.randrange(1000):03d}",
        "division_ID": f"DIV{rng.randrange(100):02d}",
        "plan_ID": rng.choice(["PPO", "HMO", "EPO", "HDHP"]),
        "prompt_Pay_Duration": duration,
        "prompt_Pay_Duration_Type": unit,
        "tax_ID": f"{rng.randrange(10**8, 10**9)}",
    }
    row.update(overrides)
    return row


def make_rows(count: int, first_key: int = 1, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_row(first_key + i, rng) for i in range(count)]


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: two keys (one for every database, one for `acme` only)."""
    values: dict[str, Any] = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "databases": {"demo": "sqlite:///:memory:", "acme": "sqlite:///:memory:"},
        "api_keys": {API_KEY: ["*"], NARROW_KEY: ["acme"]},
        "jwt_secret": JWT_SECRET,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)
