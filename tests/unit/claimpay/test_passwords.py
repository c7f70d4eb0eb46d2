"""Users' password hashes: Argon2id, and no telling unknown users from wrong passwords."""

from __future__ import annotations

import statistics
import time

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

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
    assert user.may_use("demo")
    assert not user.may_use("acme")


@pytest.mark.parametrize(
    ("name", "password"),
    [("alice", "wrong"), ("alice", ""), ("mallory", PASSWORD), ("", ""), ("Alice", PASSWORD)],
)
def test_unknown_users_and_wrong_passwords_get_the_same_none(name: str, password: str) -> None:
    assert directory().check(name, password) is None


def test_unknown_user_costs_about_as_much_as_a_wrong_password() -> None:
    """The dummy hash has the configured user's cost parameters, so an unknown name is not
    answered measurably faster (which would tell which names exist)."""
    costly = PasswordHasher(time_cost=2, memory_cost=4096, parallelism=1).hash(PASSWORD)
    users = UserDirectory({"alice": User("alice", costly, frozenset({"demo"}))})

    def median_s(name: str) -> float:
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            users.check(name, "wrong")
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    known, unknown = median_s("alice"), median_s("mallory")
    assert 0.5 < unknown / known < 2.0, (known, unknown)


def test_users_setting_takes_only_argon2_hashes() -> None:
    settings = make_settings(users={"alice": {"password_hash": cheap_hash("x"), "databases": []}})
    assert settings.users["alice"].password_hash.get_secret_value().startswith("$argon2")
    assert "argon2" not in repr(settings.users)  # hashes are secrets in reprs and logs too
    for bad in ("plaintext", "$2b$12$bcrypthashbcrypthashbcrypthashbcrypthash", ""):
        with pytest.raises(ValidationError, match="Argon2"):
            make_settings(users={"alice": {"password_hash": bad}})
    with pytest.raises(ValidationError):
        make_settings(users={"alice": {"password_hash": cheap_hash("x"), "role": "admin"}})
