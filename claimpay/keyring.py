"""API keys: configured in plaintext or as `sha256:<hex>`, matched in constant time.

Every configured key is kept as the SHA-256 digest of the key, so a presented key is
hashed once and compared with each digest by `hmac.compare_digest`, always against all of
them: the time taken tells nothing about which key, or which prefix of a key, was close.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

HASHED_PREFIX = "sha256:"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
KEY_ID_CHARS = 12
"""Hex digits of a key's digest kept as its ID (rate limits, idempotency scopes)."""


def key_digest(key: str) -> bytes:
    """The SHA-256 digest of an API key as presented by a client."""
    return hashlib.sha256(key.encode()).digest()


def configured_digest(entry: str) -> bytes:
    """The digest a configured key stands for; raises `ValueError` for a malformed hash."""
    if entry.startswith(HASHED_PREFIX):
        hex_digest = entry.removeprefix(HASHED_PREFIX)
        if not _HEX_DIGEST.fullmatch(hex_digest):
            raise ValueError("a hashed API key is `sha256:` and 64 hex digits")
        return bytes.fromhex(hex_digest)
    return key_digest(entry)


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """A presented key that matched: its ID (never the key) and the databases it may use."""

    key_id: str
    databases: frozenset[str]


def may_use(databases: Collection[str] | None, database: str) -> bool:
    """Whether a grant of `databases` (an API key's, a user's, a token's) allows `database`:
    `*` allows all, None (a token that names none) restricts nothing."""
    return databases is None or "*" in databases or database in databases


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The configured API keys, as digests."""

    entries: tuple[tuple[bytes, frozenset[str]], ...]

    @classmethod
    def of(cls, api_keys: Mapping[str, Sequence[str]]) -> KeyRing:
        return cls(
            tuple((configured_digest(entry), frozenset(dbs)) for entry, dbs in api_keys.items())
        )

    def match(self, presented: str) -> KeyMatch | None:
        """The key equal to `presented`, if any, compared with every entry in constant time."""
        digest = key_digest(presented)
        found: frozenset[str] | None = None
        for candidate, databases in self.entries:
            if hmac.compare_digest(candidate, digest):
                found = databases
        if found is None:
            return None
        return KeyMatch(key_id=digest.hex()[:KEY_ID_CHARS], databases=found)
