"""Who is calling and on which database: `x-api-key` and bearer token, then the database."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from claimpay.settings import Settings
from claimpay.tokens import InvalidToken, verify_token
from producer.problems import Problem

DATABASE_HEADER = "vbasoftware-database"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the databases its API key may use and its token's user."""

    key_id: str
    databases: frozenset[str]
    user: str

    def may_use(self, database: str) -> bool:
        return "*" in self.databases or database in self.databases


def authenticate(settings: Settings, api_key: str | None, authorization: str | None) -> Caller:
    """Check the API key, then the bearer token; 401 for any failure of either."""
    if not api_key:
        raise _unauthorized("missing-api-key", "The x-api-key header is required.")
    databases = _match_key(settings, api_key)
    if databases is None:
        raise _unauthorized("invalid-api-key", "The x-api-key header is not valid.")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized(
            "missing-bearer-token", "The Authorization header must carry a Bearer token."
        )
    try:
        user = verify_token(
            token.strip(),
            settings.jwt_secret_value(),
            settings.jwt_algorithm,
            settings.jwt_leeway_s,
        )
    except InvalidToken as exc:
        raise _unauthorized("invalid-bearer-token", f"{str(exc).capitalize()}.") from exc
    key_id = hashlib.sha256(api_key.encode()).hexdigest()[:12]
    return Caller(key_id=key_id, databases=frozenset(databases), user=user)


def authorize_database(settings: Settings, caller: Caller, database: str | None) -> str:
    """The target database: 400 when the header is missing or names no configured
    database, 403 when the caller's key may not use it."""
    if not database:
        raise Problem(
            400, "missing-database", "Bad Request", f"The {DATABASE_HEADER} header is required."
        )
    if database not in settings.databases:
        raise Problem(
            400,
            "unknown-database",
            "Bad Request",
            f"The {DATABASE_HEADER} header names a database that is not configured.",
        )
    if not caller.may_use(database):
        raise Problem(
            403, "database-forbidden", "Forbidden", "This API key may not use that database."
        )
    return database


def _match_key(settings: Settings, presented: str) -> list[str] | None:
    """The databases of the configured key equal to `presented`, compared in constant time."""
    found: list[str] | None = None
    for key, databases in settings.api_keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            found = databases
    return found


def _unauthorized(slug: str, detail: str) -> Problem:
    return Problem(401, slug, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
