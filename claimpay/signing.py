"""Webhook signatures: HMAC-SHA256 over `"<timestamp>." + body`, as receivers check them.

Headers sent with each webhook: `X-Claimpay-Timestamp` (Unix seconds) and
`X-Claimpay-Signature: sha256=<hex>`. A receiver recomputes the signature with the shared
secret, compares in constant time and rejects old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Claimpay-Timestamp"
SIGNATURE_HEADER = "X-Claimpay-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(
    secret: str, timestamp: str, signature: str, body: bytes, now: float, tolerance_s: int = 300
) -> bool:
    """True when `signature` is right for `body` and `timestamp` is recent."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
