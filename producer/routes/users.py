"""`POST /user-authentication`: a bearer token for a configured user, as the seed API's
clients obtain theirs (HTTP Basic credentials + `x-api-key` + `vbasoftware-database`)."""

from __future__ import annotations

import binascii
import logging
from base64 import b64decode
from typing import Annotated

import orjson
from anyio.to_thread import run_sync
from fastapi import APIRouter, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPBasic

from claimpay.envelope import envelope
from claimpay.settings import Settings
from producer.auth import Caller, authorize_database
from producer.deps import API_KEY_SCHEME, RequiredDatabaseHeader, ServicesDep
from producer.errors import InvalidCredentials, MissingCredentials
from producer.gatekeeper import GatekeeperDep
from producer.problems import new_activity_id
from producer.responses import NO_STORE, AuthenticationEnvelope, documented_problems

log = logging.getLogger("claimpay.producer")
router = APIRouter(tags=["users"])
MAX_CREDENTIALS_CHARS = 4096


class BasicCredentialsHeader(HTTPBasic):
    """The `Authorization` header as sent, declared as HTTP Basic in the OpenAPI document
    (parsed by `basic_credentials`, which reads UTF-8 and answers in the problem envelope)."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("Authorization")


BASIC_SCHEME = BasicCredentialsHeader(
    scheme_name="Basic", auto_error=False, description="A configured user's name and password."
)


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """`(user, password)` of an HTTP Basic header; 401 when it is missing or malformed."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise MissingCredentials("HTTP Basic credentials are required.")
    try:
        if len(encoded) > MAX_CREDENTIALS_CHARS:
            raise ValueError("too long")
        decoded = b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCredentials(INVALID_CREDENTIALS) from None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        raise InvalidCredentials(INVALID_CREDENTIALS)
    return user, password


INVALID_CREDENTIALS = "The user name or password is not valid."


@router.post(
    "/user-authentication",
    summary="Obtain a bearer token with a user's name and password",
    operation_id="authenticateUser",
    responses={
        200: {
            "model": AuthenticationEnvelope,
            "description": "The token, as the seed API issues it.",
            "headers": NO_STORE,
        },
        **documented_problems(400, 401, 403, 429, 500, 503),
    },
)
async def user_authentication(
    services: ServicesDep,
    gatekeeper: GatekeeperDep,
    x_api_key: Annotated[str | None, Security(API_KEY_SCHEME)],
    authorization: Annotated[str | None, Security(BASIC_SCHEME)],
    vbasoftware_database: RequiredDatabaseHeader = None,
) -> Response:
    """Checked like every call (API key 401, rate 429), then the credentials (429 while
    the user name is locked after repeated failures; 503 when too many password checks
    wait; 401, the same answer for an unknown user and a wrong password), then the
    database (400, 403 when the key or the user may not use it).

    Async: the password check runs on the login gate's own threads (`producer.logins`),
    so a flood of logins never holds the thread pool the other routes need."""
    key = gatekeeper.authenticator.api_key(x_api_key)
    await run_sync(gatekeeper.throttle, key.key_id)
    name, password = basic_credentials(authorization)
    await run_sync(gatekeeper.failed_logins.refuse_if_locked, name)
    user = await gatekeeper.login_gate.check(name, password)
    if user is None or gatekeeper.issuer is None:
        await run_sync(gatekeeper.failed_logins.failed, name)
        raise InvalidCredentials(INVALID_CREDENTIALS)
    await run_sync(gatekeeper.failed_logins.succeeded, name)
    caller = Caller(key.key_id, key.databases, user.name, user.databases)
    database = authorize_database(services.settings, caller, vbasoftware_database)
    token = gatekeeper.issuer.mint(user.name, _ttl(services.settings), sorted(user.databases))
    log.info("user authenticated for %s", database)
    result = {"idToken": token, "expiresIn": _ttl(services.settings), "tokenType": "Bearer"}
    body = envelope({"authenticationResult": result}, new_activity_id())
    return Response(
        orjson.dumps(body),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _ttl(settings: Settings) -> int:
    return settings.token_ttl_s
