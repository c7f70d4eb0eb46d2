"""API keys: plaintext or `sha256:<hex>` in the configuration, matched by digest."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from claimpay.keyring import HASHED_PREFIX, KeyRing, configured_digest
from tests.credentials import hashed_key
from tests.factories import make_settings


def test_hashed_key_is_the_sha256_of_the_key() -> None:
    assert hashed_key("k") == HASHED_PREFIX + hashlib.sha256(b"k").hexdigest()


def test_plain_and_hashed_entries_match_the_presented_key() -> None:
    ring = KeyRing.of({"plain-key": ["demo"], hashed_key("hashed-key"): ["acme", "demo"]})
    plain, hashed = ring.match("plain-key"), ring.match("hashed-key")
    assert plain is not None
    assert plain.databases == frozenset({"demo"})
    assert hashed is not None
    assert hashed.databases == frozenset({"acme", "demo"})


@pytest.mark.parametrize(
    "presented", ["", "plain-ke", "plain-key ", "PLAIN-KEY", hashed_key("plain-key")]
)
def test_anything_else_matches_nothing(presented: str) -> None:
    assert KeyRing.of({"plain-key": ["*"]}).match(presented) is None


def test_the_hash_itself_is_not_a_key() -> None:
    entry = hashed_key("secret-key")
    ring = KeyRing.of({entry: ["*"]})
    assert ring.match(entry) is None
    assert ring.match(entry.removeprefix(HASHED_PREFIX)) is None


def test_key_id_is_the_same_for_a_key_configured_either_way_and_never_the_key() -> None:
    plain = KeyRing.of({"k-123": ["*"]}).match("k-123")
    hashed = KeyRing.of({hashed_key("k-123"): ["*"]}).match("k-123")
    assert plain is not None
    assert hashed is not None
    assert plain.key_id == hashed.key_id
    assert "k-123" not in plain.key_id
    assert len(plain.key_id) == 12


def test_hex_digits_may_be_upper_case() -> None:
    upper = HASHED_PREFIX + hashlib.sha256(b"k").hexdigest().upper()
    assert KeyRing.of({upper: ["*"]}).match("k") is not None


@pytest.mark.parametrize(
    "entry", ["sha256:", "sha256:abc", "sha256:" + "g" * 64, "sha256:" + "a" * 65]
)
def test_malformed_hashes_are_refused_by_the_settings(entry: str) -> None:
    with pytest.raises(ValueError, match="64 hex"):
        configured_digest(entry)
    with pytest.raises(ValidationError, match="64 hex"):
        make_settings(api_keys={entry: ["*"]})


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="empty"):
        make_settings(api_keys={"": ["*"]})
