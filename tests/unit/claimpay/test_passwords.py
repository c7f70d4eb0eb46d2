"""Users' password hashes: Argon2id, and no telling unknown users from wrong passwords."""

from __future__ import annotations

from typing import Literal

import pytest
from argon2 import PasswordHasher, extract_parameters
from pydantic import ValidationError

from claimpay.keyring import may_use
from claimpay.passwords import User, UserDirectory, hash_password, is_password_hash
from tests.credentials import PASSWORD, cheap_hash
from tests.factories import make_settings


def directory() -> UserDirectory:
    return UserDirectory({"alice": User("alice", cheap_hash(PASSWORD), frozenset({"demo"}))})


def test_hash_password_makes_a_verifiable_argon2id_hash() -> None:
    hashed = hash_password("s3cret ünïcode")
    assert hashed.startswith("$argon2id$")
    assert is_password_hash(hashed)
    users = UserDirectory({"bob": User("bob", hashed, frozenset({"*"}))})
    assert users.check("bob", "s3cret ünïcode") is not None
    assert users.check("bob", "s3cret unicode") is None


def test_the_right_password_finds_the_user() -> None:
    user = directory().check("alice", PASSWORD)
    assert user is not None
    assert user.name == "alice"
    assert may_use(user.databases, "demo")
    assert not may_use(user.databases, "acme")


@pytest.mark.parametrize(
    ("name", "password"),
    [("alice", "wrong"), ("alice", ""), ("mallory", PASSWORD), ("", ""), ("Alice", PASSWORD)],
)
def test_unknown_users_and_wrong_passwords_get_the_same_none(name: str, password: str) -> None:
    assert directory().check(name, password) is None


def test_unknown_user_is_checked_against_a_hash_of_the_same_cost() -> None:
    """An unknown name runs one Argon2 verification with the configured user's cost
    parameters (not a cheaper one, nor none), so it is not answered measurably faster,
    which would tell which names exist."""
    costly = PasswordHasher(time_cost=3, memory_cost=4096, parallelism=1).hash(PASSWORD)
    verified: list[str] = []

    class RecordingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(hash if isinstance(hash, str) else hash.decode())
            return super().verify(hash, password)

    users = UserDirectory(
        {"alice": User("alice", costly, frozenset({"demo"}))}, hasher=RecordingHasher()
    )
    assert users.check("alice", "wrong") is None
    assert users.check("mallory", "wrong") is None
    assert len(verified) == 2
    known, unknown = (extract_parameters(h) for h in verified)
    assert verified[1] != costly
    assert unknown == known


def test_users_setting_takes_only_argon2_hashes() -> None:
    settings = make_settings(users={"alice": {"password_hash": cheap_hash("x"), "databases": []}})
    assert settings.users["alice"].password_hash.get_secret_value().startswith("$argon2")
    assert "argon2" not in repr(settings.users)  # hashes are secrets in reprs and logs too
    for bad in ("plaintext", "$2b$12$bcrypthashbcrypthashbcrypthashbcrypthash", ""):
        with pytest.raises(ValidationError, match="Argon2"):
            make_settings(users={"alice": {"password_hash": bad}})
    with pytest.raises(ValidationError):
        make_settings(users={"alice": {"password_hash": cheap_hash("x"), "role": "admin"}})
