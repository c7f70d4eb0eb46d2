"""`GET /jobs`: the caller's jobs, newest first, paged like the seed API (`x-pagination`)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from claimpay.envelope import envelope
from claimpay.jobs import JobState
from producer.auth import authorize_database
from producer.deps import CallerDep, DatabaseHeader, ServicesDep
from producer.joblist import list_jobs
from producer.problems import request_activity_id

router = APIRouter(prefix="/jobs", tags=["jobs"])

MAX_LIST_PAGE_SIZE = 1_000
DEFAULT_LIST_PAGE_SIZE = 50
ListedState = Literal["queued", "running", "cancelling", "completed", "cancelled"]


@router.get(
    "",
    summary="The jobs of the databases this API key may use, newest first",
    responses={
        200: {
            "description": "One page of job status objects; totals in the `x-pagination` "
            "header `{TotalCount, TotalPages, CurrentPage, PageSize}`."
        }
    },
)
async def job_list(
    services: ServicesDep,
    caller: CallerDep,
    vbasoftware_database: DatabaseHeader = None,
    state: Annotated[ListedState | None, Query(description="Only jobs in this state")] = None,
    page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
    page_size: Annotated[
        int, Query(alias="pageSize", ge=1, le=MAX_LIST_PAGE_SIZE)
    ] = DEFAULT_LIST_PAGE_SIZE,
) -> Response:
    settings = services.settings
    if vbasoftware_database is not None:
        databases = [authorize_database(settings, caller, vbasoftware_database)]
    else:
        databases = [name for name in sorted(settings.databases) if caller.may_use(name)]
    listing = await anyio.to_thread.run_sync(
        lambda: list_jobs(
            services.store,
            databases,
            state=JobState(state) if state else None,
            page=page,
            page_size=page_size,
        )
    )
    pagination = {
        "TotalCount": listing.total,
        "TotalPages": math.ceil(listing.total / page_size),
        "CurrentPage": page,
        "PageSize": page_size,
    }
    body = envelope([meta.public() for meta in listing.jobs], request_activity_id())
    return Response(
        orjson.dumps(body),
        status_code=200,
        media_type="application/json",
        headers={"x-pagination": orjson.dumps(pagination).decode()},
    )
