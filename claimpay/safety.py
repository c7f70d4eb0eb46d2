"""What `env=prod` refuses: the checks behind the settings' production validator.

Kept apart from `claimpay.settings` so the class stays a list of knobs; the validator there
calls `production_problems` and refuses to build settings while it finds any. Flower
without authentication is refused where it matters, when `claimpay flower` binds beyond
loopback (`cli.flowerconf`), so API and worker hosts need no Flower password.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from claimpay.jwtalgorithms import HMAC_ALGORITHMS
from claimpay.keyring import HASHED_PREFIX

MIN_SECRET_BYTES = 32
"""An HMAC key shorter than this is weak (RFC 7518 asks HS256 for at least 256 bits)."""
MIN_DISTINCT_SECRET_CHARS = 8
MIN_API_KEY_CHARS = 16
"""A plaintext API key shorter than this is refused in production (a `sha256:` hash of a
key is accepted whatever the key: its length cannot be seen)."""
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


def short_api_keys(api_keys: Iterable[str]) -> int:
    """How many of the configured keys are plaintext and shorter than `MIN_API_KEY_CHARS`."""
    return sum(
        1 for key in api_keys if not key.startswith(HASHED_PREFIX) and len(key) < MIN_API_KEY_CHARS
    )


def production_problems(
    api_keys: Collection[str],
    jwt_algorithms: Iterable[str],
    jwt_secret: str,
    webhook_secret: str | None = None,
) -> list[str]:
    """Everything that makes these settings unsafe outside development, in plain words
    (never quoting a value).

    `jwt_algorithms`: every algorithm the settings accept or sign with; `jwt_secret`: the
    HMAC secret, empty when unset; `webhook_secret`: the webhooks' HMAC key, None when
    unset (callbacks are then refused; an empty one would sign with an empty key).
    Values, not `Settings`, so this module needs no import of the settings that call it.
    """
    problems: list[str] = []
    if not api_keys:
        problems.append("CLAIMPAY_API_KEYS is empty")
    if short := short_api_keys(api_keys):
        problems.append(
            f"CLAIMPAY_API_KEYS has {short} plaintext key(s) shorter than {MIN_API_KEY_CHARS} "
            "characters (use longer random keys, or configure a key as its sha256: hash)"
        )
    if webhook_secret is not None and (why := weak_secret(webhook_secret)):
        problems.append(f"CLAIMPAY_WEBHOOK_SECRET {why}")
    uses_hmac = any(a in HMAC_ALGORITHMS for a in jwt_algorithms)
    if uses_hmac and not jwt_secret:
        problems.append("CLAIMPAY_JWT_SECRET is not set")
    elif uses_hmac and (why := weak_secret(jwt_secret)):
        problems.append(f"CLAIMPAY_JWT_SECRET {why}")
    return problems
