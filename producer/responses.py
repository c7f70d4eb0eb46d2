"""Response bodies as models, for the OpenAPI document (routes write bytes themselves).

Every status a route can answer with is declared with its body, so clients and schema
tests (schemathesis) can rely on the document: the success bodies below, and the problem
envelope for every 4xx/5xx (`documented_problems`, and `complete_openapi` for the ones
shared by all authenticated routes).
"""

# ruff: noqa: N815 -- field names are the JSON names on the wire, as the seed API spells them

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from claimpay.entities import EntitySpec
from claimpay.entities.base import no_default
from claimpay.jobs import JobState


class Debug(BaseModel):
    activityID: str = Field(description="The job ID, or the request's activity ID.")


class ProblemDetails(BaseModel):
    """RFC 7807 problem details."""

    type: str = Field(description="A URI naming the kind of problem: `urn:claimpay:problem:*`.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status of the answer.")
    detail: str = Field(description="What went wrong, for this request.")
    instance: str = Field(description="The request's path.")


class ProblemEnvelope(BaseModel):
    """Every request-level error: `{data: null, error: {...}, debug: {activityID}}`."""

    data: None = None
    error: ProblemDetails
    debug: Debug


JOB_STATES = (
    "`receiving`: the rows are still arriving (seen only through the `Location` of a 409 "
    "`idempotency-key-in-use`); `queued`: stored, waiting for a worker; `running`: a worker "
    "applies its chunks; `cancelling`: a cancel was asked, chunks already started finish; "
    "`completed`: every row has its result; `cancelled`: rows no worker applied are 409 "
    "`Not processed: job cancelled`."
)
AcceptedState = Literal["queued", "running", "cancelling", "completed", "cancelled"]


class JobAccepted(BaseModel):
    jobId: str = Field(description="The job's ID (32 hex digits).")
    state: AcceptedState = Field(
        description="Usually `queued`; `completed` at once for an empty batch `[]`. "
        + JOB_STATES.split("; ", 1)[1]
    )
    total: int = Field(description="Rows in the batch.")
    statusUrl: str = Field(description="`/jobs/{jobId}`: poll it.")
    resultsUrl: str = Field(description="`/jobs/{jobId}/results`: one result per row.")


class JobAcceptedEnvelope(BaseModel):
    data: JobAccepted
    error: None = None
    debug: Debug


class JobStatus(BaseModel):
    jobId: str = Field(description="The job's ID (32 hex digits).")
    state: JobState = Field(description=JOB_STATES)
    database: str = Field(description="The database the rows go to (`vbasoftware-database`).")
    total: int = Field(description="Rows in the batch.")
    processed: int = Field(description="Rows with a result so far.")
    created: int = Field(description="Rows created (201).")
    updated: int = Field(description="Rows updated (200).")
    failed: int = Field(description="Rows with another status (4xx, 5xx).")
    notProcessed: int = Field(description="Rows a cancel left unapplied (409).")
    submittedAt: datetime = Field(description="When the batch was accepted (UTC).")
    startedAt: datetime | None = Field(
        None, description="When a worker first claimed a chunk (UTC); null before."
    )
    finishedAt: datetime | None = Field(description="When the job ended (UTC); null before.")
    chunks: int = Field(0, description="Chunk tasks of the job.")
    chunksDone: int | None = Field(None, description="Chunks recorded so far.")
    dryRun: bool = Field(description="`dryRun=true`: rows were checked, nothing was written.")
    retries: int = Field(description="How many retry rounds (`POST /jobs/{jobId}/retry`) ran.")
    retriedRows: int = Field(
        default=0,
        description="Only in the answer of `POST /jobs/{jobId}/retry`: the rows queued again.",
        json_schema_extra=no_default,
    )


class JobStatusEnvelope(BaseModel):
    data: JobStatus
    error: None = None
    debug: Debug


class JobListEnvelope(BaseModel):
    """One page of jobs, newest first; totals in the `x-pagination` header."""

    data: list[JobStatus]
    error: None = None
    debug: Debug


class KeyValue(BaseModel):
    key: str = Field(description="The key field's JSON name, e.g. `claimPromptPay_Key`.")
    value: int | str | None = Field(
        description="The row's key as sent; null when the row has no usable key."
    )


class Attempt(BaseModel):
    """An earlier result of a row that a retry round applied again."""

    status: int
    body: str


class RowResult(BaseModel):
    id: list[KeyValue] = Field(description="The row's key, as `[{key, value}]`.")
    status: int = Field(
        description="201 Created, 200 Updated (`dryRun`: 201 Would create, 200 Would "
        "update), 400 invalid row, 409 not processed (cancelled), 422 refused by the "
        "database, 500 or 503."
    )
    body: str = Field(description="`Created`, `Updated`, or what is wrong with the row.")
    attempts: list[Attempt] = Field(
        default_factory=list,
        description="Only on a retried row: its earlier results, oldest first.",
        json_schema_extra=no_default,
    )


class ResultsEnvelope(BaseModel):
    """The seed API's 207 multi-status envelope: one item per input row, in input order."""

    data: list[RowResult]
    error: None = None
    debug: Debug


class AuthenticationResult(BaseModel):
    idToken: str = Field(description="The bearer token (a JWT) for `Authorization: Bearer`.")
    expiresIn: int = Field(description="Seconds until the token expires.")
    tokenType: Literal["Bearer"] = "Bearer"


class AuthenticationData(BaseModel):
    authenticationResult: AuthenticationResult


class AuthenticationEnvelope(BaseModel):
    data: AuthenticationData
    error: None = None
    debug: Debug


class Liveness(BaseModel):
    status: Literal["ok"]


class ReadinessCheck(BaseModel):
    ok: bool
    detail: str = Field(description="What the check found, or why it failed.")
    warning: str = Field(
        default="",
        description="Only in production, only when there is one: something to fix that "
        "does not stop this instance serving (a Redis that persists nothing).",
        json_schema_extra=no_default,
    )


class Readiness(BaseModel):
    status: Literal["ready", "not-ready"]
    checks: dict[str, ReadinessCheck] = Field(
        description="`redis`, and `database:<name>` for each configured database."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Only when a check has a warning: `<check>: <warning>` for each.",
        json_schema_extra=no_default,
    )


class ReadinessEnvelope(BaseModel):
    data: Readiness
    error: ProblemDetails | None = Field(description="When not ready: the failed checks.")
    debug: Debug


PROBLEM_DESCRIPTIONS = {
    400: "Bad request: a missing or unknown database header, bad parameters or body.",
    401: "Missing or invalid API key or credentials (bearer token or basic).",
    403: "The API key (or the user) may not use that database.",
    404: "No such resource (an unknown job and another tenant's job look the same).",
    405: "Method not allowed.",
    406: "None of the accepted media types can be produced.",
    409: "Conflict with the resource's state.",
    410: "The job store (Redis) was reset after this job was accepted: the job is lost.",
    413: "The body, a row, or the number of rows is over its limit.",
    415: "The body is not JSON (application/json, UTF-8, uncompressed).",
    422: "The request is well-formed but cannot be processed.",
    429: "Too many requests, or too many unfinished jobs, for this API key (see Retry-After).",
    500: "An unexpected error; the body never carries a stack trace.",
    503: "The job store (Redis) is unavailable; retry after Retry-After.",
}


def documented_problem(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response of a problem envelope with `status`."""
    return {
        "model": ProblemEnvelope,
        "description": description or PROBLEM_DESCRIPTIONS.get(status, "A problem."),
    }


def documented_problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these problem statuses."""
    return {status: documented_problem(status) for status in statuses}


AUTHENTICATED_PROBLEMS = (400, 401, 429, 500, 503)
"""What any authenticated route can answer: bad parameters, auth, rate, failure, Redis."""


def camel(name: str) -> str:
    """`claim-prompt-pays` -> `ClaimPromptPays`, for operation IDs and schema names."""
    return "".join(part.capitalize() for part in name.split("-"))


def header(description: str, *, required: bool = False) -> dict[str, Any]:
    """An OpenAPI response header object (a string); `required`: sent with every such
    answer."""
    return {"description": description, "required": required, "schema": {"type": "string"}}


LOCATION = header("The job's status URL, `/jobs/{jobId}`.", required=True)
PREFERENCE_APPLIED = header("`wait=N`: the `Prefer: wait=N` of the request was honoured.")
PAGINATION_DESCRIPTION = "Paging totals as JSON: `{TotalCount, TotalPages, CurrentPage, PageSize}`."
PAGINATION = header(PAGINATION_DESCRIPTION, required=True)
PAGINATION_WHEN_PAGED = header(PAGINATION_DESCRIPTION + " Only when `page` or `pageSize` is given.")
RETRY_AFTER = header("Seconds to wait before trying again.", required=True)
WWW_AUTHENTICATE = header("The scheme expected: `Bearer`, or `Basic`.", required=True)
NO_STORE = {
    "Cache-Control": header("`no-store`: the answer carries a token.", required=True),
    "Pragma": header("`no-cache`.", required=True),
}
PROBLEM_HEADERS = {401: {"WWW-Authenticate": WWW_AUTHENTICATE}}
"""Headers every such problem answer carries, on any route."""
AUTHENTICATED_PROBLEM_HEADERS = {
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}
"""Headers of the rate-limit and job-store problems of authenticated routes."""


def readback_names(spec: EntitySpec) -> tuple[str, str, str]:
    """Schema names of an entity's stored row, and of the envelopes of one and of a page."""
    name = spec.row_model.__name__.removesuffix("In")
    return name, f"{name}Envelope", f"{name}PageEnvelope"


def readback_response(spec: EntitySpec, *, paged: bool) -> dict[str, Any]:
    """The 200 answer of a read-back route (its schemas: `producer.openapi`)."""
    _, one, page = readback_names(spec)
    response: dict[str, Any] = {
        "description": "One page of rows, sorted; totals in `x-pagination`."
        if paged
        else "The row.",
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{page if paged else one}"}
            }
        },
    }
    if paged:
        response["headers"] = {"x-pagination": PAGINATION}
    return response


def problem_schema(components: dict[str, Any]) -> dict[str, Any]:
    """The problem envelope's JSON schema, its sub-schemas added to `components`."""
    generated = ProblemEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        components.setdefault(name, definition)
    return generated
