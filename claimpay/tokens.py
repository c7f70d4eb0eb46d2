"""Bearer tokens: HS256 JWTs with `sub` (the user) and `exp`."""

from __future__ import annotations

import time

import jwt


class InvalidToken(Exception):
    """Raised when a bearer token is malformed, unsigned, wrongly signed or expired."""


def mint_token(secret: str, subject: str, ttl_s: int, algorithm: str = "HS256") -> str:
    """A signed token for `subject`, valid for `ttl_s` seconds."""
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "nbf": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=algorithm)


def verify_token(token: str, secret: str, algorithm: str = "HS256", leeway_s: int = 30) -> str:
    """The token's subject; `InvalidToken` unless it is signed with `algorithm` and current."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[algorithm],
            leeway=leeway_s,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the bearer token has expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("the bearer token is not valid") from exc
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("the bearer token has no subject")
    return subject
