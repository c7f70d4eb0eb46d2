"""Who is calling and on which database: `x-api-key` and bearer token, then the database.

Checked in the order of the error contract: the API key, then the bearer token (401 for
any failure of either), then the database header (400), then whether the key and the
token's user may use that database (403).
"""

from __future__ import annotations

from dataclasses import dataclass

from claimpay.keyring import KeyMatch, KeyRing, may_use
from claimpay.settings import Settings
from producer.errors import (
    DatabaseForbidden,
    InvalidApiKey,
    InvalidBearerToken,
    MissingApiKey,
    MissingBearerToken,
    MissingDatabase,
    UnconfiguredDatabase,
)
from producer.tokens import InvalidToken, TokenPolicy

DATABASE_HEADER = "vbasoftware-database"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its API key's ID and databases, and its token's user."""

    key_id: str
    databases: frozenset[str]
    user: str
    token_databases: frozenset[str] | None = None
    """The databases the token names (tokens of configured users); None: no restriction."""

    def key_may_use(self, database: str) -> bool:
        return may_use(self.databases, database)

    def may_use(self, database: str) -> bool:
        """Both the API key and the token allow `database`."""
        return may_use(self.databases, database) and may_use(self.token_databases, database)


@dataclass(frozen=True)
class Authenticator:
    """The configured API keys and bearer-token policy, prepared once per app."""

    keys: KeyRing
    tokens: TokenPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """Raises `RuntimeError` when the token policy lacks a key (refuse to start)."""
        return cls(KeyRing.of(settings.api_keys), TokenPolicy.from_settings(settings))

    def api_key(self, api_key: str | None) -> KeyMatch:
        """The matching configured key; `Unauthenticated` when it is missing or unknown."""
        if not api_key:
            raise MissingApiKey("The x-api-key header is required.")
        match = self.keys.match(api_key)
        if match is None:
            raise InvalidApiKey("The x-api-key header is not valid.")
        return match

    def caller(self, api_key: str | None, authorization: str | None) -> Caller:
        """Check the API key, then the bearer token; `Unauthenticated` for any failure."""
        key = self.api_key(api_key)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingBearerToken("The Authorization header must carry a Bearer token.")
        try:
            claims = self.tokens.verify(token.strip())
        except InvalidToken as exc:
            raise InvalidBearerToken(f"{str(exc).capitalize()}.") from exc
        return Caller(key.key_id, key.databases, claims.subject, claims.databases)


def authorize_database(settings: Settings, caller: Caller, database: str | None) -> str:
    """The target database: `InvalidRequest` when the header is missing or names no
    configured database, `DatabaseForbidden` when the caller's key (or token) may not."""
    if not database:
        raise MissingDatabase(f"The {DATABASE_HEADER} header is required.")
    if database not in settings.databases:
        raise UnconfiguredDatabase(
            f"The {DATABASE_HEADER} header names a database that is not configured."
        )
    if not caller.key_may_use(database):
        raise DatabaseForbidden("This API key may not use that database.")
    if not caller.may_use(database):
        raise DatabaseForbidden("This user may not use that database.")
    return database
