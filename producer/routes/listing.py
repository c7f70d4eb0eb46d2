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
from claimpay.settings import Settings
from producer.auth import authorize_database
from producer.deps import CallerDep, DatabaseHeader, ServicesDep
from producer.joblist import list_jobs
from producer.problems import request_activity_id
from producer.responses import PAGINATION, JobListEnvelope, documented_problems

ListedState = Literal["queued", "running", "cancelling", "completed", "cancelled"]


def listing_router(settings: Settings) -> APIRouter:
    """`GET /jobs`; its page sizes come from `settings`."""
    router = APIRouter(prefix="/jobs", tags=["jobs"])

    @router.get(
        "",
        summary="The jobs of the databases this API key may use, newest first",
        operation_id="listJobs",
        responses={
            200: {
                "model": JobListEnvelope,
                "description": "One page of job status objects; totals in the `x-pagination` "
                "header `{TotalCount, TotalPages, CurrentPage, PageSize}`.",
                "headers": {"x-pagination": PAGINATION},
            },
            **documented_problems(403),
        },
    )
    async def job_list(
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: DatabaseHeader = None,
        state: Annotated[ListedState | None, Query(description="Only jobs in this state")] = None,
        page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
        page_size: int = Query(  # not Annotated: a string annotation cannot see `settings`
            settings.jobs_page_size, alias="pageSize", ge=1, le=settings.jobs_max_page_size
        ),
    ) -> Response:
        if vbasoftware_database is not None:
            databases = [authorize_database(services.settings, caller, vbasoftware_database)]
        else:
            configured = sorted(services.settings.databases)
            databases = [name for name in configured if caller.may_use(name)]
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
        jobs = await anyio.to_thread.run_sync(services.store.statuses, listing.jobs)
        body = envelope(jobs, request_activity_id())
        return Response(
            orjson.dumps(body),
            status_code=200,
            media_type="application/json",
            headers={"x-pagination": orjson.dumps(pagination).decode()},
        )

    return router
