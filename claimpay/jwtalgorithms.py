"""JWT signing algorithms by key family: an HMAC secret or a public key verifies them.

Apart from `claimpay.tokens` so the settings' production checks (`claimpay.safety`) can
read the families without importing the token code, which depends on the settings.
"""

from __future__ import annotations

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
