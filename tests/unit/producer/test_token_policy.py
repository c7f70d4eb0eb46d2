"""The token policy: pinned algorithms, key by algorithm family, exp/nbf/iat, iss/aud,
RS256/ES256 with a configured public key, and the issuer claimpay signs with."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from jwt.utils import base64url_encode

from claimpay.keyring import may_use
from producer.tokens import InvalidToken, TokenIssuer, TokenPolicy
from tests.credentials import key_pair
from tests.factories import JWT_SECRET, make_settings


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "alice", "iat": now, "nbf": now, "exp": now + 600}
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def hs256_policy(**options: Any) -> TokenPolicy:
    return TokenPolicy.build(["HS256"], hmac_secret=JWT_SECRET, **options)


@pytest.mark.parametrize(("kind", "algorithm"), [("rsa", "RS256"), ("ec", "ES256")])
def test_public_key_algorithms_verify_with_the_configured_public_key(
    kind: str, algorithm: str
) -> None:
    private, public = key_pair(kind)
    policy = TokenPolicy.build([algorithm], public_key_pem=public)
    token = jwt.encode(claims(), private, algorithm=algorithm)
    assert policy.verify(token).subject == "alice"


def test_public_key_may_be_given_as_a_file(tmp_path: Path) -> None:
    private, public = key_pair("rsa")
    (tmp_path / "jwt.pub").write_text(public)
    settings = make_settings(
        jwt_algorithms=["RS256"], jwt_public_key=str(tmp_path / "jwt.pub"), jwt_secret=None
    )
    token = jwt.encode(claims(), private, algorithm="RS256")
    assert TokenPolicy.from_settings(settings).verify(token).subject == "alice"


def test_an_hs256_token_forged_with_the_public_key_as_secret_is_refused() -> None:
    """The classic algorithm confusion: HS256 and RS256 both accepted, the attacker signs
    HS256 with the (public) RSA key. The HMAC key is the secret, never the public key."""
    _, public = key_pair("rsa")
    policy = TokenPolicy.build(["HS256", "RS256"], hmac_secret=JWT_SECRET, public_key_pem=public)
    header = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    payload = base64url_encode(orjson.dumps(claims()))
    signing_input = header + b"." + payload
    signature = hmac.new(public.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64url_encode(signature)).decode()
    with pytest.raises(InvalidToken):
        policy.verify(forged)


def test_algorithms_not_configured_are_refused_even_with_a_valid_signature() -> None:
    private, public = key_pair("rsa")
    only_hs = hs256_policy()
    with pytest.raises(InvalidToken, match="not valid"):
        only_hs.verify(jwt.encode(claims(), private, algorithm="RS256"))
    only_rs = TokenPolicy.build(["RS256"], public_key_pem=public)
    with pytest.raises(InvalidToken, match="not valid"):
        only_rs.verify(jwt.encode(claims(), JWT_SECRET, algorithm="HS256"))


def test_iat_in_the_future_is_refused_and_within_the_leeway_accepted() -> None:
    now = int(time.time())
    with pytest.raises(InvalidToken, match="not valid yet"):
        hs256_policy(leeway_s=30).verify(
            jwt.encode(claims(iat=now + 3600, nbf=None), JWT_SECRET, algorithm="HS256")
        )
    token = jwt.encode(claims(iat=now + 10, nbf=None), JWT_SECRET, algorithm="HS256")
    assert hs256_policy(leeway_s=30).verify(token).subject == "alice"


def test_nbf_is_honoured_with_the_leeway() -> None:
    now = int(time.time())
    early = jwt.encode(claims(nbf=now + 20), JWT_SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="not valid yet"):
        hs256_policy(leeway_s=0).verify(early)
    assert hs256_policy(leeway_s=30).verify(early).subject == "alice"


def test_exp_is_required() -> None:
    with pytest.raises(InvalidToken):
        hs256_policy().verify(jwt.encode(claims(exp=None), JWT_SECRET, algorithm="HS256"))


def test_issuer_and_audience_are_checked_when_configured() -> None:
    policy = hs256_policy(issuer="https://idp.example", audience="claimpay")
    good = jwt.encode(
        claims(iss="https://idp.example", aud="claimpay"), JWT_SECRET, algorithm="HS256"
    )
    assert policy.verify(good).subject == "alice"
    for wrong in (
        claims(aud="claimpay"),
        claims(iss="https://idp.example"),
        claims(iss="https://evil.example", aud="claimpay"),
        claims(iss="https://idp.example", aud="other"),
    ):
        with pytest.raises(InvalidToken):
            policy.verify(jwt.encode(wrong, JWT_SECRET, algorithm="HS256"))


def test_a_token_with_an_audience_is_refused_when_none_is_configured() -> None:
    with pytest.raises(InvalidToken):
        hs256_policy().verify(jwt.encode(claims(aud="elsewhere"), JWT_SECRET, algorithm="HS256"))


def test_databases_claim_is_read_and_must_be_a_list_of_names() -> None:
    token = jwt.encode(claims(databases=["acme"]), JWT_SECRET, algorithm="HS256")
    verified = hs256_policy().verify(token)
    assert verified.databases == frozenset({"acme"})
    assert may_use(verified.databases, "acme")
    assert not may_use(verified.databases, "demo")
    for bad in ("acme", [1], {"a": 1}):
        with pytest.raises(InvalidToken):
            hs256_policy().verify(jwt.encode(claims(databases=bad), JWT_SECRET, "HS256"))


@pytest.mark.parametrize(("kind", "algorithm"), [("rsa", "RS256"), ("ec", "ES256")])
def test_the_issuer_signs_with_a_private_key_and_its_tokens_verify(
    kind: str, algorithm: str
) -> None:
    private, public = key_pair(kind)
    settings = make_settings(
        jwt_algorithm=algorithm,
        jwt_private_key=private,
        jwt_public_key=public,
        jwt_issuer="claimpay",
        jwt_audience="claimpay-api",
    )
    token = TokenIssuer.from_settings(settings).mint("bob", 60, ["demo"])
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    verified = TokenPolicy.from_settings(settings).verify(token)
    assert (verified.subject, verified.databases) == ("bob", frozenset({"demo"}))
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "claimpay"


def test_missing_or_unfit_keys_refuse_to_build_a_policy() -> None:
    _, ec_public = key_pair("ec")
    with pytest.raises(RuntimeError, match="CLAIMPAY_JWT_SECRET"):
        TokenPolicy.from_settings(make_settings(jwt_secret=None))
    with pytest.raises(RuntimeError, match="CLAIMPAY_JWT_PUBLIC_KEY"):
        TokenPolicy.from_settings(make_settings(jwt_algorithms=["RS256"]))
    with pytest.raises(RuntimeError, match="does not fit"):
        TokenPolicy.build(["RS256"], public_key_pem=ec_public)
    with pytest.raises(RuntimeError, match="CLAIMPAY_JWT_PRIVATE_KEY"):
        TokenIssuer.from_settings(make_settings(jwt_algorithm="RS256"))


def test_default_settings_keep_cli_tokens_working() -> None:
    settings = make_settings()
    token = TokenIssuer.from_settings(settings).mint("carol", 60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert TokenPolicy.from_settings(settings).verify(token).databases is None
