"""FastAPI dependencies: the app's services and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from claimpay.jobstore import JobStore
from claimpay.messaging import Enqueuer
from claimpay.settings import Settings
from producer.auth import DATABASE_HEADER, Caller, authenticate


@dataclass(frozen=True)
class Services:
    """What the routes use, built by `create_app` and kept on `app.state.services`."""

    settings: Settings
    store: JobStore
    enqueuer: Enqueuer


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_caller(
    services: Annotated[Services, Depends(get_services)],
    x_api_key: Annotated[str | None, Header(alias="x-api-key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    return authenticate(services.settings, x_api_key, authorization)


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
DatabaseHeader = Annotated[str | None, Header(alias=DATABASE_HEADER)]
