"""Password hashes of the users of `POST /user-authentication` (Argon2id, `argon2-cffi`).

`UserDirectory.check` answers the same way, in about the same time, for an unknown user
and for a wrong password: an unknown user's password is checked against a dummy hash with
the same parameters, so neither the answer nor its timing tells which users exist.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

HASH_PREFIX = "$argon2"


def password_hasher() -> PasswordHasher:
    """Argon2id with the library's defaults (RFC 9106 low-memory profile)."""
    return PasswordHasher()


def hash_password(password: str) -> str:
    """The Argon2id hash of `password`, to put in `CLAIMPAY_USERS`."""
    return password_hasher().hash(password)


def is_password_hash(value: str) -> bool:
    """True for a string in the PHC format argon2 writes (`$argon2id$v=19$...`)."""
    return value.startswith(HASH_PREFIX) and value.count("$") >= 4


@dataclass(frozen=True, slots=True)
class User:
    """A configured user: the password hash and the databases the user may use."""

    name: str
    password_hash: str
    databases: frozenset[str]


@dataclass
class UserDirectory:
    """The configured users; checks their passwords without telling who exists."""

    users: Mapping[str, User]
    hasher: PasswordHasher = field(default_factory=password_hasher)
    max_concurrent: int = 2
    """Checks run at once; each takes the hash's memory cost (64 MiB by default)."""
    _dummy_hash: str | None = None
    _slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_concurrent)
        if self.users:  # made up front, so the first unknown name costs no more than later ones
            self._dummy()

    def check(self, name: str, password: str) -> User | None:
        """The user if `name` exists and `password` is theirs, else None."""
        user = self._lookup(name)
        target = user.password_hash if user is not None else self._dummy()
        try:
            with self._slots:
                self.hasher.verify(target, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def _lookup(self, name: str) -> User | None:
        """The user called `name`, comparing every name in constant time."""
        found: User | None = None
        presented = name.encode()
        for candidate, user in self.users.items():
            if hmac.compare_digest(candidate.encode(), presented):
                found = user
        return found

    def _dummy(self) -> str:
        """A hash of a random password, with the cost parameters of a configured user's."""
        if self._dummy_hash is None:
            hasher = self.hasher
            for user in self.users.values():
                with contextlib.suppress(InvalidHashError):
                    hasher = PasswordHasher.from_parameters(extract_parameters(user.password_hash))
                    break
            self._dummy_hash = hasher.hash(secrets.token_urlsafe(24))
        return self._dummy_hash
