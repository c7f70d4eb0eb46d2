"""JWT signing algorithms by key family: an HMAC secret or a public key verifies them.

The settings' production checks (`claimpay.safety`) need the families; the token code that
uses them too (`producer.tokens`) is the producer's, which the contracts never import.
"""

from __future__ import annotations

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
