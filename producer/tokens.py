"""Bearer tokens: JWTs with `sub` (the user) and `exp`, verified against a pinned policy.

A token is accepted only when its header names one of the configured algorithms; the key
is chosen by that algorithm's family (the HMAC secret for `HS*`, the configured public key
for `RS*`/`ES*`), so a public key can never be used as an HMAC secret. `exp` is required,
`nbf` and `iat` are honoured with the configured leeway, and `iss`/`aud` are checked when
configured. Tokens that claimpay issues (`claimpay token`, `POST /user-authentication`)
are signed by a `TokenIssuer` built from the same settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from jwt.algorithms import get_default_algorithms

from claimpay.errors import ClaimpayError
from claimpay.jwtalgorithms import HMAC_ALGORITHMS, PUBLIC_KEY_ALGORITHMS

if TYPE_CHECKING:
    from claimpay.settings import Settings

DATABASES_CLAIM = "databases"
"""Optional claim: the databases the token's user may use (tokens of configured users)."""


class InvalidToken(ClaimpayError):
    """Raised when a bearer token is malformed, unsigned, wrongly signed, expired or not
    yet valid, or has the wrong algorithm, issuer or audience."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: its user and, if it names them, its databases."""

    subject: str
    databases: frozenset[str] | None = None
    """None: the token restricts no database (`claimpay.keyring.may_use`)."""


def read_pem(value: str) -> str:
    """A PEM key given inline (`-----BEGIN ...`) or as the path of a PEM file."""
    if value.lstrip().startswith("-----BEGIN"):
        return value
    return Path(value).expanduser().read_text()


def _prepared_key(algorithm: str, pem: str) -> Any:
    """The key object of `pem` for `algorithm`; raises `RuntimeError` if it does not fit."""
    try:
        return get_default_algorithms()[algorithm].prepare_key(pem)
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise RuntimeError(f"the configured key does not fit {algorithm} tokens") from exc


@dataclass(frozen=True)
class TokenPolicy:
    """How bearer tokens are verified: a key for each accepted algorithm, the leeway and
    the expected issuer and audience. Build it with `build` or `from_settings`."""

    keys: Mapping[str, Any]
    leeway_s: int = 30
    issuer: str | None = None
    audience: str | None = None

    @classmethod
    def build(
        cls,
        algorithms: Iterable[str],
        *,
        hmac_secret: str | None = None,
        public_key_pem: str | None = None,
        leeway_s: int = 30,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> TokenPolicy:
        """The policy; `RuntimeError` when an algorithm's key is missing or does not fit."""
        keys: dict[str, Any] = {}
        for algorithm in algorithms:
            if algorithm in HMAC_ALGORITHMS:
                if not hmac_secret:
                    raise RuntimeError(f"CLAIMPAY_JWT_SECRET is not set ({algorithm} tokens)")
                keys[algorithm] = hmac_secret
            elif algorithm in PUBLIC_KEY_ALGORITHMS:
                if not public_key_pem:
                    raise RuntimeError(f"CLAIMPAY_JWT_PUBLIC_KEY is not set ({algorithm} tokens)")
                keys[algorithm] = _prepared_key(algorithm, public_key_pem)
            else:
                raise RuntimeError(f"unsupported token algorithm {algorithm!r}")
        return cls(keys, leeway_s, issuer, audience)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        """The policy of `settings`; `RuntimeError` when a needed key is missing or unfit."""
        public = settings.jwt_public_key
        return cls.build(
            settings.accepted_jwt_algorithms(),
            hmac_secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
            public_key_pem=read_pem(public) if public else None,
            leeway_s=settings.jwt_leeway_s,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )

    def verify(self, token: str) -> TokenClaims:
        """The token's claims; `InvalidToken` unless it satisfies the whole policy."""
        keys = self.keys
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if not isinstance(algorithm, str) or algorithm not in keys:
                raise InvalidToken("the bearer token is not valid")
            claims = jwt.decode(
                token,
                keys[algorithm],
                algorithms=[algorithm],
                leeway=self.leeway_s,
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "sub"], "verify_iat": True, "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the bearer token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("the bearer token is not valid yet") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("the bearer token is not valid") from exc
        return _claims(claims)


def _claims(claims: dict[str, Any]) -> TokenClaims:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("the bearer token has no subject")
    databases = claims.get(DATABASES_CLAIM)
    if databases is None:
        return TokenClaims(subject)
    if not isinstance(databases, list) or not all(isinstance(d, str) for d in databases):
        raise InvalidToken("the bearer token is not valid")
    return TokenClaims(subject, frozenset(databases))


@dataclass(frozen=True)
class TokenIssuer:
    """Signs the tokens claimpay hands out."""

    algorithm: str
    signing_key: str
    issuer: str | None = None
    audience: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenIssuer:
        """The issuer of `settings`; `RuntimeError` when it holds no signing key."""
        algorithm = settings.jwt_algorithm
        if algorithm in HMAC_ALGORITHMS:
            key = settings.jwt_secret_value()
        elif settings.jwt_private_key is not None:
            key = read_pem(settings.jwt_private_key.get_secret_value())
        else:
            raise RuntimeError(f"CLAIMPAY_JWT_PRIVATE_KEY is not set ({algorithm} tokens)")
        return cls(algorithm, key, settings.jwt_issuer, settings.jwt_audience)

    def mint(self, subject: str, ttl_s: int, databases: list[str] | None = None) -> str:
        """A signed token for `subject`, valid for `ttl_s` seconds from now."""
        now = int(time.time())
        claims: dict[str, Any] = {"sub": subject, "iat": now, "nbf": now, "exp": now + ttl_s}
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        if databases is not None:
            claims[DATABASES_CLAIM] = sorted(databases)
        return jwt.encode(claims, self.signing_key, algorithm=self.algorithm)


def mint_token(secret: str, subject: str, ttl_s: int, algorithm: str = "HS256") -> str:
    """A token for `subject` signed with an HMAC `secret`, valid for `ttl_s` seconds."""
    return TokenIssuer(algorithm, secret).mint(subject, ttl_s)
