"""`/jobs/{jobId}`: poll a job, read its results, cancel it, rerun what failed
(`POST /jobs/{jobId}/retry`)."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Literal

import anyio.to_thread
import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from claimpay.envelope import envelope
from claimpay.jobs import JobMeta, JobState
from claimpay.settings import Settings
from producer.auth import Caller
from producer.deps import CallerDep, DatabaseHeader, Services, ServicesDep
from producer.errors import (
    JobCompleted,
    JobLost,
    JobNotFinished,
    JobNotFound,
    JobReceiving,
)
from producer.preferences import preference_applied, preferred_wait_s, until_terminal
from producer.reruns import prepare_rerun
from producer.responses import (
    LOCATION,
    PAGINATION_WHEN_PAGED,
    PREFERENCE_APPLIED,
    JobStatusEnvelope,
    ResultsEnvelope,
    documented_problem,
    documented_problems,
)
from producer.results import media_type, parse_status_filter, results_response

log = logging.getLogger("claimpay.producer")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def visible_job(services: Services, caller: Caller, job_id: str, database: str | None) -> JobMeta:
    """The job, if this caller may see it; 404 alike for unknown and foreign jobs, 410 for
    a job the job store lost (reset after accepting it)."""
    meta = services.store.meta(job_id) if _JOB_ID.match(job_id) else None
    if meta is None and _JOB_ID.match(job_id) and services.store.lost(job_id):
        raise JobLost(
            "The job store was reset after this job was accepted: its state and results "
            "are lost. Rows of chunks already applied are in the database; submit the "
            "batch again (the upsert makes that safe).",
        )
    if (
        meta is None
        or not caller.may_use(meta.database)
        or (database is not None and database != meta.database)
    ):
        raise JobNotFound("No such job.")
    return meta


def jobs_router(settings: Settings) -> APIRouter:
    """The routes of one job; the results' page sizes come from `settings`."""
    router = APIRouter(prefix="/jobs", tags=["jobs"])

    @router.get(
        "/{job_id}",
        summary="The state and counts of a job",
        operation_id="getJob",
        responses={
            200: {
                "model": JobStatusEnvelope,
                "description": "The job's state and counts.",
                "headers": {"Preference-Applied": PREFERENCE_APPLIED},
            },
            **documented_problems(404),
        },
    )
    async def job_status(
        request: Request,
        job_id: str,
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: DatabaseHeader = None,
        prefer: Annotated[
            str | None,
            Header(
                description="`wait=N`: answer once the job has ended, or after N seconds "
                "(at most `CLAIMPAY_MAX_WAIT_S`), instead of at once."
            ),
        ] = None,
    ) -> Response:
        meta = await anyio.to_thread.run_sync(
            visible_job, services, caller, job_id, vbasoftware_database
        )
        wait_s = preferred_wait_s(prefer, services.settings.max_wait_s)
        meta = await until_terminal(
            services.store, meta, wait_s, request.is_disconnected, services.ends
        )
        [data] = await anyio.to_thread.run_sync(services.store.statuses, [meta])
        response = _json(envelope(data, job_id), 200)
        response.headers.update(preference_applied(wait_s))
        return response

    @router.delete(
        "/{job_id}",
        summary="Cancel a job: chunks not started are skipped, applied rows keep their result",
        operation_id="cancelJob",
        responses={
            200: {
                "model": JobStatusEnvelope,
                "description": "The job is cancelled (it already was, or nothing was left).",
            },
            202: {
                "model": JobStatusEnvelope,
                "description": "The job is cancelling; poll it until `cancelled`.",
            },
            404: documented_problem(404),
            409: documented_problem(
                409, "The job has already completed, or its rows are still being received."
            ),
        },
    )
    def cancel_job(
        job_id: str,
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: DatabaseHeader = None,
    ) -> Response:
        before = visible_job(services, caller, job_id, vbasoftware_database)
        if before.state is JobState.RECEIVING:
            raise JobReceiving("The job's rows are still being received.")
        state = services.store.cancel(job_id)
        if state is JobState.COMPLETED:
            raise JobCompleted("The job has already completed.")
        meta = visible_job(services, caller, job_id, vbasoftware_database)
        log.info("job %s: cancel requested, now %s", job_id, meta.state.value)
        [data] = services.store.statuses([meta])
        return _json(envelope(data, job_id), 200 if meta.state.terminal else 202)

    @router.get(
        "/{job_id}/results",
        summary="The 207 multi-status envelope of a completed job, whole or paged",
        operation_id="getJobResults",
        status_code=207,
        responses={
            202: {
                "model": JobStatusEnvelope,
                "description": "The job is not finished; the body is its status.",
            },
            207: {
                "model": ResultsEnvelope,
                "description": "The job has ended: one result per input row, in input order "
                "(`application/json`, the default).",
                "headers": {"x-pagination": PAGINATION_WHEN_PAGED},
            },
            200: {
                "description": "The same results as a file, when `Accept` prefers it: CSV "
                "with a header line, or NDJSON, one result object per line.",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
                "headers": {"x-pagination": PAGINATION_WHEN_PAGED},
            },
            404: documented_problem(404),
        },
    )
    def job_results(
        job_id: str,
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: DatabaseHeader = None,
        page: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        page_size: int | None = Query(  # not Annotated: a string annotation cannot see `settings`
            None, alias="pageSize", ge=1, le=settings.results_max_page_size
        ),
        status: Annotated[
            str | None, Query(description="failed, succeeded, or codes/classes: 503,4xx")
        ] = None,
        include: Annotated[
            Literal["input"] | None,
            Query(
                description="`input`: add each row as it was sent (`input`; null when no longer "
                "kept: the rows of a chunk whose rows all succeeded are dropped once applied)."
            ),
        ] = None,
        accept: Annotated[str | None, Header()] = None,
    ) -> Response:
        meta = visible_job(services, caller, job_id, vbasoftware_database)
        keep = parse_status_filter(status)
        if not meta.state.terminal:
            return _json(envelope(services.store.statuses([meta])[0], job_id), 202)
        paged = page is not None or page_size is not None
        return results_response(
            services.store,
            meta,
            media=media_type(accept),
            keep=keep,
            page=(page or 1, page_size or settings.results_page_size) if paged else None,
            include_input=include == "input",
        )

    @router.post(
        "/{job_id}/retry",
        summary="Run again only the rows whose last status was 5xx (or the chosen statuses)",
        operation_id="retryJob",
        responses={
            200: {
                "model": JobStatusEnvelope,
                "description": "No row had such a status: nothing was queued (`retriedRows` 0).",
                "headers": {"Location": LOCATION},
            },
            202: {
                "model": JobStatusEnvelope,
                "description": "`retriedRows` rows are queued again under the same job ID; "
                "poll the job.",
                "headers": {"Location": LOCATION},
            },
            409: documented_problem(409, "The job is not finished, or a retry is being prepared."),
        },
    )
    def rerun_job(
        job_id: str,
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: DatabaseHeader = None,
        statuses: Annotated[
            str, Query(description="HTTP codes and classes to retry, e.g. 503,409 or 5xx")
        ] = "5xx",
    ) -> Response:
        meta = visible_job(services, caller, job_id, vbasoftware_database)
        keep = parse_status_filter(statuses) or parse_status_filter("5xx")
        assert keep is not None
        if not meta.state.terminal:
            raise JobNotFinished("Only a finished job can be retried.")
        codes = [code for code in range(100, 600) if keep(code)]
        plan = prepare_rerun(services.store, meta, codes, services.settings.rerun_lock_ttl_s)
        if plan.rows_by_chunk:
            chunks = sorted(plan.rows_by_chunk)
            counts = [plan.rows_by_chunk[c] for c in chunks]
            services.enqueuer.enqueue_chunks(job_id, chunks, counts, queue=meta.queue)
        log.info(
            "job %s: rerun queued %d rows (%d unavailable)", job_id, plan.rows, plan.unavailable
        )
        after = visible_job(services, caller, job_id, vbasoftware_database)
        [data] = services.store.statuses([after])
        body = envelope({**data, "retriedRows": plan.rows}, job_id)
        headers = {"Location": f"/jobs/{job_id}"}
        return Response(
            orjson.dumps(body), 202 if plan.rows else 200, headers, media_type="application/json"
        )

    return router


def _json(body: object, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
