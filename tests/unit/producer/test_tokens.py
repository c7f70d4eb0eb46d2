"""Bearer tokens: signed HS JWTs with a subject and an expiry, nothing weaker."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
import orjson
import pytest

from producer.tokens import InvalidToken, mint_token
from tests.credentials import verify_token
from tests.factories import JWT_SECRET

OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs512-use-0123456789abcdef"


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


def signed(claims: dict[str, Any], algorithm: str = "HS256") -> str:
    return jwt.encode(claims, JWT_SECRET, algorithm=algorithm)


def current_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "alice", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def test_minted_token_verifies_to_its_subject() -> None:
    assert verify_token(mint_token(JWT_SECRET, "alice", 600), JWT_SECRET) == "alice"


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_round_trip_with_the_configured_algorithm(algorithm: str) -> None:
    token = mint_token(OTHER_SECRET, "bob", 60, algorithm)
    assert verify_token(token, OTHER_SECRET, algorithm) == "bob"


def test_expired_token_is_rejected_as_expired() -> None:
    token = mint_token(JWT_SECRET, "alice", -3600)
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(token, JWT_SECRET, leeway_s=30)


def test_token_expired_within_the_leeway_is_accepted() -> None:
    token = signed(current_claims(exp=int(time.time()) - 5))
    assert verify_token(token, JWT_SECRET, leeway_s=300) == "alice"


def test_token_not_yet_valid_is_rejected() -> None:
    token = signed(current_claims(nbf=int(time.time()) + 3600))
    with pytest.raises(InvalidToken):
        verify_token(token, JWT_SECRET)


def test_token_signed_with_another_secret_is_rejected() -> None:
    with pytest.raises(InvalidToken, match="not valid"):
        verify_token(mint_token(OTHER_SECRET, "alice", 600), JWT_SECRET)


def test_unsigned_alg_none_token_is_rejected() -> None:
    token = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(current_claims())}."
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "alice"
    with pytest.raises(InvalidToken):
        verify_token(token, JWT_SECRET)


def test_hs512_token_is_rejected_when_hs256_is_configured() -> None:
    token = mint_token(JWT_SECRET, "alice", 600, "HS512")
    with pytest.raises(InvalidToken, match="not valid"):
        verify_token(token, JWT_SECRET, "HS256")


def test_tampered_payload_is_rejected() -> None:
    header, _, signature = mint_token(JWT_SECRET, "alice", 600).split(".")
    forged = f"{header}.{b64url(current_claims(sub='admin'))}.{signature}"
    with pytest.raises(InvalidToken):
        verify_token(forged, JWT_SECRET)


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_token_without_sub_or_exp_is_rejected(missing: str) -> None:
    token = signed(current_claims(**{missing: None}))
    with pytest.raises(InvalidToken):
        verify_token(token, JWT_SECRET)


@pytest.mark.parametrize("subject", ["", 42])
def test_token_with_an_empty_or_non_string_subject_is_rejected(subject: object) -> None:
    token = signed(current_claims(sub=subject))
    with pytest.raises(InvalidToken):
        verify_token(token, JWT_SECRET)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b"])
def test_malformed_token_is_rejected(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(token, JWT_SECRET)
