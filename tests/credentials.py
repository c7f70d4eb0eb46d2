"""Credentials for tests: cheap password hashes, Basic headers, RSA and EC key pairs."""

from __future__ import annotations

import base64
from functools import cache

from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from claimpay.keyring import HASHED_PREFIX, key_digest
from producer.tokens import TokenPolicy

USER = "alice"
PASSWORD = "correct horse battery staple"


def cheap_hash(password: str) -> str:
    """An Argon2id hash with the smallest costs: real verification, test speed."""
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(password)


def user_config(
    password: str = PASSWORD, databases: tuple[str, ...] = ("demo",)
) -> dict[str, object]:
    """One `CLAIMPAY_USERS` entry."""
    return {"password_hash": cheap_hash(password), "databases": list(databases)}


def hashed_key(key: str) -> str:
    """The `sha256:<hex>` form of `key`, configured instead of the key (README)."""
    return HASHED_PREFIX + key_digest(key).hex()


def verify_token(token: str, secret: str, algorithm: str = "HS256", leeway_s: int = 30) -> str:
    """The subject of an HMAC-signed token; `InvalidToken` unless it is signed with
    `algorithm` and current."""
    policy = TokenPolicy.build([algorithm], hmac_secret=secret, leeway_s=leeway_s)
    return policy.verify(token).subject


def basic(user: str, password: str) -> str:
    """An `Authorization: Basic` value (UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@cache
def key_pair(kind: str) -> tuple[str, str]:
    """`(private PEM, public PEM)` of a fresh `rsa` or `ec` (P-256) key."""
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem
