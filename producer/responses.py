"""Response bodies as models, for the OpenAPI document (routes write bytes themselves).

Every status a route can answer with is declared with its body, so clients and schema
tests (schemathesis) can rely on the document: the success bodies below, and the problem
envelope for every 4xx/5xx (`documented_problems`, and `complete_openapi` for the ones
shared by all authenticated routes).
"""

# ruff: noqa: N815 -- field names are the JSON names on the wire, as the seed API spells them

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from claimpay.jobs import JobState


class Debug(BaseModel):
    activityID: str = Field(description="The job ID, or the request's activity ID.")


class ProblemDetails(BaseModel):
    """RFC 7807 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


class ProblemEnvelope(BaseModel):
    """Every request-level error: `{data: null, error: {...}, debug: {activityID}}`."""

    data: None = None
    error: ProblemDetails
    debug: Debug


class JobAccepted(BaseModel):
    jobId: str
    state: JobState
    total: int
    statusUrl: str
    resultsUrl: str


class JobAcceptedEnvelope(BaseModel):
    data: JobAccepted
    error: None = None
    debug: Debug


class JobStatus(BaseModel):
    jobId: str
    state: JobState
    database: str
    total: int
    processed: int
    created: int
    updated: int
    failed: int
    notProcessed: int = 0
    submittedAt: str
    finishedAt: str | None = None


class JobStatusEnvelope(BaseModel):
    data: JobStatus
    error: None = None
    debug: Debug


class KeyValue(BaseModel):
    key: str
    value: Any = Field(description="The row's key, null when the row has no usable key.")


class RowResult(BaseModel):
    id: list[KeyValue]
    status: int
    body: str


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


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the document say what the app does for every route:

    - an operation needs *both* its security schemes (FastAPI lists them as alternatives);
    - request validation errors are 400 problems, never FastAPI's 422 error list;
    - every 4xx/5xx is a problem envelope, and every route declares 500, every
      authenticated one also 400, 401, 429 and 503, every one with a path parameter 404
      (its resource may not exist, or belong to another tenant), every job route 410 (a
      job the job store lost), every one taking the
      database header 403 (job routes, which answer a foreign job with 404, never do).
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ProblemEnvelope", _problem_schema(components))
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            _complete_operation(operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _complete_operation(operation: dict[str, Any]) -> None:
    security = operation.get("security")
    if security and len(security) > 1:
        operation["security"] = [{name: [] for req in security for name in req}]
    responses: dict[str, Any] = operation.setdefault("responses", {})
    validation = responses.get("422", {}).get("content", {}).get("application/json", {})
    if validation.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    wanted = AUTHENTICATED_PROBLEMS if security else (500,)
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        wanted = (*wanted, 404)
    if any(p.get("in") == "path" and p.get("name") == "job_id" for p in parameters):
        wanted = (*wanted, 410)  # a job the job store lost (see `claimpay.jobids`)
    if any(p.get("name") == "vbasoftware-database" for p in parameters):
        wanted = (*wanted, 403)
    for wanted_status in wanted:
        description = PROBLEM_DESCRIPTIONS[wanted_status]
        responses.setdefault(str(wanted_status), {"description": description})
    for status, response in responses.items():
        if status[:1] in ("4", "5") and "content" not in response:
            response["content"] = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ProblemEnvelope"}}
            }


def _problem_schema(components: dict[str, Any]) -> dict[str, Any]:
    """The problem envelope's JSON schema, its sub-schemas added to `components`."""
    generated = ProblemEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        components.setdefault(name, definition)
    return generated
