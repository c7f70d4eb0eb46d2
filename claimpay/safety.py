"""What `env=prod` refuses: the checks behind the settings' production validator.

Kept apart from `claimpay.settings` so the class stays a list of knobs; the validator there
calls `production_problems` and refuses to build settings while it finds any. Flower
without authentication is refused where it matters, when `claimpay flower` binds beyond
loopback (`cli.flowerconf`), so API and worker hosts need no Flower password.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from claimpay.jwtalgorithms import HMAC_ALGORITHMS

MIN_SECRET_BYTES = 32
"""An HMAC key shorter than this is weak (RFC 7518 asks HS256 for at least 256 bits)."""
MIN_DISTINCT_SECRET_CHARS = 8
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme", "change-me", "change_me", "secret", "jwt-secret", "jwt_secret",
        "password", "your-256-bit-secret", "supersecret", "dev", "test", "default",
    }
)  # fmt: skip
"""Values copied from examples; refused whatever their length."""


def weak_secret(secret: str) -> str | None:
    """Why `secret` is too weak to sign tokens with, or None."""
    if secret.strip().lower() in PLACEHOLDER_SECRETS:
        return "is a placeholder value"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    if len(set(secret)) < MIN_DISTINCT_SECRET_CHARS:
        return "repeats too few characters to be random"
    return None


def production_problems(
    api_keys: Collection[str], jwt_algorithms: Iterable[str], jwt_secret: str
) -> list[str]:
    """Everything that makes these settings unsafe outside development, in plain words.

    `jwt_algorithms`: every algorithm the settings accept or sign with; `jwt_secret`: the
    HMAC secret, empty when unset. Values, not `Settings`, so this module needs no import
    of the settings that call it.
    """
    problems: list[str] = []
    if not api_keys:
        problems.append("CLAIMPAY_API_KEYS is empty")
    uses_hmac = any(a in HMAC_ALGORITHMS for a in jwt_algorithms)
    if uses_hmac and not jwt_secret:
        problems.append("CLAIMPAY_JWT_SECRET is not set")
    elif uses_hmac and (why := weak_secret(jwt_secret)):
        problems.append(f"CLAIMPAY_JWT_SECRET {why}")
    return problems
