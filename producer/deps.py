"""FastAPI dependencies: the app's services and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from claimpay.jobstore import JobStore
from claimpay.messaging import Enqueuer
from claimpay.settings import Settings
from producer.auth import DATABASE_HEADER, Caller
from producer.gatekeeper import GatekeeperDep
from producer.jobends import JobEnds


@dataclass(frozen=True)
class Services:
    """What the routes use, built by `create_app` and kept on `app.state.services`."""

    settings: Settings
    store: JobStore
    enqueuer: Enqueuer
    ends: JobEnds
    """Wakes the requests waiting for a job's end (`Prefer: wait`)."""


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


API_KEY_SCHEME = APIKeyHeader(
    name="x-api-key", scheme_name="ApiKey", auto_error=False, description="The API key."
)
BEARER_SCHEME = HTTPBearer(
    scheme_name="Bearer",
    bearerFormat="JWT",
    auto_error=False,
    description="A JWT from `POST /user-authentication` (or `claimpay token`).",
)


def get_caller(
    gatekeeper: GatekeeperDep,
    x_api_key: Annotated[str | None, Security(API_KEY_SCHEME)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)],
) -> Caller:
    """The authenticated caller (401), within its key's request rate (429)."""
    authorization = f"Bearer {bearer.credentials}" if bearer is not None else None
    caller = gatekeeper.authenticator.caller(x_api_key, authorization)
    gatekeeper.throttle(caller.key_id)
    return caller


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
DatabaseHeader = Annotated[
    str | None,
    Header(
        alias=DATABASE_HEADER,
        description="Optional here: only a job (or jobs) of this database; another "
        "database's job answers 404.",
    ),
]
"""The database header where it only narrows (the job routes)."""
REQUIRED_MARK = "x-claimpay-required"
"""Marks a parameter the OpenAPI document declares required, though the route checks its
presence itself (to answer with its own problem, after authentication)."""
RequiredDatabaseHeader = Annotated[
    str | None,
    Header(
        alias=DATABASE_HEADER,
        description="Target database: a name the API key (and the token's user) may use.",
        openapi_examples={"demo": {"summary": "the dev database", "value": "demo"}},
        json_schema_extra={REQUIRED_MARK: True},
    ),
]
"""The database header of the calls that need it (400 when missing: checked by
`authorize_database`, after authentication)."""
