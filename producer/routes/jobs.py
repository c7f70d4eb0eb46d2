"""`GET /jobs/{jobId}` and `GET /jobs/{jobId}/results`: poll a job, read its 207 envelope."""

from __future__ import annotations

import logging
import math
import re
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from claimpay.entities import get_entity
from claimpay.envelope import envelope, stream_envelope
from claimpay.jobs import JobMeta, JobState
from producer.auth import Caller
from producer.deps import CallerDep, DatabaseHeader, Services, ServicesDep
from producer.problems import Problem

log = logging.getLogger("claimpay.producer")
router = APIRouter(prefix="/jobs", tags=["jobs"])

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_PAGE_SIZE = 10_000
DEFAULT_PAGE_SIZE = 100


def visible_job(services: Services, caller: Caller, job_id: str, database: str | None) -> JobMeta:
    """The job, if this caller may see it; 404 alike for unknown and foreign jobs."""
    meta = services.store.meta(job_id) if _JOB_ID.match(job_id) else None
    if (
        meta is None
        or meta.state is JobState.RECEIVING
        or not caller.may_use(meta.database)
        or (database is not None and database != meta.database)
    ):
        raise Problem(404, "job-not-found", "Not Found", "No such job.")
    return meta


@router.get("/{job_id}", summary="The state and counts of a job")
def job_status(
    job_id: str,
    services: ServicesDep,
    caller: CallerDep,
    vbasoftware_database: DatabaseHeader = None,
) -> Response:
    meta = visible_job(services, caller, job_id, vbasoftware_database)
    return _json(envelope(meta.public(), job_id), 200)


@router.delete(
    "/{job_id}",
    summary="Cancel a job: chunks not started are skipped, applied rows keep their result",
    responses={
        200: {"description": "The job is cancelled (it already was, or nothing was left)."},
        202: {"description": "The job is cancelling; poll it until `cancelled`."},
        409: {"description": "The job has already completed."},
    },
)
def cancel_job(
    job_id: str,
    services: ServicesDep,
    caller: CallerDep,
    vbasoftware_database: DatabaseHeader = None,
) -> Response:
    visible_job(services, caller, job_id, vbasoftware_database)
    state = services.store.cancel(job_id)
    if state is JobState.COMPLETED:
        raise Problem(409, "job-completed", "Conflict", "The job has already completed.")
    meta = visible_job(services, caller, job_id, vbasoftware_database)
    log.info("job %s: cancel requested, now %s", job_id, meta.state.value)
    return _json(envelope(meta.public(), job_id), 200 if meta.state.terminal else 202)


@router.get(
    "/{job_id}/results",
    summary="The 207 multi-status envelope of a completed job, whole or paged",
    responses={
        202: {"description": "The job is not finished; the body is its status."},
        207: {"description": "One result per input row, in input order."},
    },
)
def job_results(
    job_id: str,
    services: ServicesDep,
    caller: CallerDep,
    vbasoftware_database: DatabaseHeader = None,
    page: Annotated[int | None, Query(ge=1)] = None,
    page_size: Annotated[int | None, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)] = None,
) -> Response:
    meta = visible_job(services, caller, job_id, vbasoftware_database)
    if not meta.state.terminal:
        return _json(envelope(meta.public(), job_id), 202)
    spec = get_entity(meta.entity)
    headers: dict[str, str] = {}
    start, stop = 0, meta.total
    if page is not None or page_size is not None:
        size = page_size or DEFAULT_PAGE_SIZE
        number = page or 1
        start, stop = (number - 1) * size, min(number * size, meta.total)
        headers["x-pagination"] = orjson.dumps(
            {
                "TotalCount": meta.total,
                "TotalPages": math.ceil(meta.total / size),
                "CurrentPage": number,
                "PageSize": size,
            }
        ).decode()
    outcomes = services.store.iter_outcomes(meta, start, max(start, stop))
    return StreamingResponse(
        stream_envelope(spec, outcomes, job_id),
        status_code=207,
        media_type="application/json",
        headers=headers,
    )


def _json(body: object, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
