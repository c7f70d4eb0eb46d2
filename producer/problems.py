"""The HTTP edge of errors: every error the API answers with becomes an RFC 7807 problem
inside the seed's envelope, here and nowhere else.

`PROBLEM_TYPES` is the one table from domain errors (`producer.errors`, and the intake's
limits) to status and problem type; titles are the statuses' reason phrases.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from claimpay.envelope import envelope
from claimpay.logs import current_context
from producer import errors
from producer.limits import (
    BodyRejected,
    BodyTooLarge,
    DuplicateKeys,
    InvalidValue,
    RowTooLarge,
    TooDeep,
    TooManyRows,
)
from producer.runs import MalformedBody

log = logging.getLogger("claimpay.producer")

PROBLEM_BASE = "urn:claimpay:problem:"

PROBLEM_TYPES: dict[type[Exception], tuple[HTTPStatus, str]] = {
    # 400
    errors.InvalidRequest: (HTTPStatus.BAD_REQUEST, "invalid-request"),
    errors.MissingDatabase: (HTTPStatus.BAD_REQUEST, "missing-database"),
    errors.UnconfiguredDatabase: (HTTPStatus.BAD_REQUEST, "unknown-database"),
    errors.InvalidCallback: (HTTPStatus.BAD_REQUEST, "invalid-callback"),
    errors.CallbackNotAllowed: (HTTPStatus.BAD_REQUEST, "callback-not-allowed"),
    errors.CallbacksDisabled: (HTTPStatus.BAD_REQUEST, "callbacks-disabled"),
    errors.InvalidStatusFilter: (HTTPStatus.BAD_REQUEST, "invalid-status-filter"),
    errors.InvalidSort: (HTTPStatus.BAD_REQUEST, "invalid-sort"),
    MalformedBody: (HTTPStatus.BAD_REQUEST, "malformed-body"),
    InvalidValue: (HTTPStatus.BAD_REQUEST, "malformed-body"),
    TooDeep: (HTTPStatus.BAD_REQUEST, "nesting-too-deep"),
    DuplicateKeys: (HTTPStatus.BAD_REQUEST, "duplicate-keys"),
    # 401, 403, 404, 410
    errors.MissingApiKey: (HTTPStatus.UNAUTHORIZED, "missing-api-key"),
    errors.InvalidApiKey: (HTTPStatus.UNAUTHORIZED, "invalid-api-key"),
    errors.MissingBearerToken: (HTTPStatus.UNAUTHORIZED, "missing-bearer-token"),
    errors.InvalidBearerToken: (HTTPStatus.UNAUTHORIZED, "invalid-bearer-token"),
    errors.MissingCredentials: (HTTPStatus.UNAUTHORIZED, "missing-credentials"),
    errors.InvalidCredentials: (HTTPStatus.UNAUTHORIZED, "invalid-credentials"),
    errors.DatabaseForbidden: (HTTPStatus.FORBIDDEN, "database-forbidden"),
    errors.JobNotFound: (HTTPStatus.NOT_FOUND, "job-not-found"),
    errors.RowNotFound: (HTTPStatus.NOT_FOUND, "not-found"),
    errors.JobLost: (HTTPStatus.GONE, "job-store-reset"),
    # 408
    errors.BodyStalled: (HTTPStatus.REQUEST_TIMEOUT, "body-stalled"),
    # 409, 422
    errors.JobReceiving: (HTTPStatus.CONFLICT, "job-receiving"),
    errors.JobCompleted: (HTTPStatus.CONFLICT, "job-completed"),
    errors.JobNotFinished: (HTTPStatus.CONFLICT, "job-not-finished"),
    errors.RerunBusy: (HTTPStatus.CONFLICT, "retry-in-progress"),
    errors.IdempotencyKeyInUse: (HTTPStatus.CONFLICT, "idempotency-key-in-use"),
    errors.IdempotencyKeyReused: (HTTPStatus.UNPROCESSABLE_ENTITY, "idempotency-key-reused"),
    # 413, 415
    BodyRejected: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body-too-large"),
    BodyTooLarge: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body-too-large"),
    TooManyRows: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too-many-rows"),
    RowTooLarge: (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "row-too-large"),
    errors.UnsupportedMediaType: (HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"),
    errors.UnsupportedContentEncoding: (
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported-content-encoding",
    ),
    # 431
    errors.HeadersTooLarge: (HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers-too-large"),
    # 429, 503
    errors.RateLimited: (HTTPStatus.TOO_MANY_REQUESTS, "rate-limited"),
    errors.TooManyActiveJobs: (HTTPStatus.TOO_MANY_REQUESTS, "too-many-active-jobs"),
    errors.LoginLocked: (HTTPStatus.TOO_MANY_REQUESTS, "login-locked"),
    errors.LoginBusy: (HTTPStatus.SERVICE_UNAVAILABLE, "login-busy"),
    RedisError: (HTTPStatus.SERVICE_UNAVAILABLE, "job-store-unavailable"),
}
"""Domain error -> (status, problem type); a subclass not listed takes its nearest base's."""

_TITLES = {
    # RFC 9110 renamed these; Python's phrases follow it from 3.13 on. Pinned, so the
    # title never depends on the Python version.
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "Content Too Large",
    HTTPStatus.UNPROCESSABLE_ENTITY: "Unprocessable Entity",
}
_HTTP_ERRORS = {404: "not-found", 405: "method-not-allowed"}
"""Problem types of the framework's own errors (an unknown path or method)."""
STORE_UNAVAILABLE = "The job store is unavailable; retry later."


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem response's content: the status, the type's slug and the detail."""

    status: int
    slug: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    activity_id: str | None = None
    title: str = ""
    """Empty: the status's reason phrase."""

    def __post_init__(self) -> None:
        if not self.title:
            status = HTTPStatus(self.status)
            object.__setattr__(self, "title", _TITLES.get(status, status.phrase))


def problem_type(exc: Exception) -> tuple[HTTPStatus, str]:
    """`PROBLEM_TYPES` of `exc`'s class or of its nearest base that is listed."""
    for cls in type(exc).__mro__:
        found = PROBLEM_TYPES.get(cls)
        if found is not None:
            return found
    raise LookupError(f"no problem type for {type(exc).__name__}")


def problem_of(exc: Exception, retry_after_s: float) -> Problem:
    """The problem answering a domain error (or a `RedisError`: the job store is down, and
    the client may try again after `retry_after_s`)."""
    status, slug = problem_type(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = exc.challenge
    if isinstance(exc, (errors.Throttled, errors.ServiceBusy)):
        headers["Retry-After"] = retry_after(exc.retry_after_s)
    if isinstance(exc, errors.IdempotencyConflict):
        headers["Location"] = f"/jobs/{exc.job_id}"
    if isinstance(exc, RedisError):
        headers["Retry-After"] = retry_after(retry_after_s)
        return Problem(status, slug, STORE_UNAVAILABLE, headers)
    activity_id = exc.activity_id if isinstance(exc, errors.RequestError) else None
    return Problem(status, slug, str(exc), headers, activity_id)


def retry_after(seconds: float) -> str:
    """`Retry-After` in whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def request_activity_id() -> str:
    """The activity ID the request's logs carry (see `producer.middleware`), else a new one."""
    bound = current_context().get("activityID")
    return bound if isinstance(bound, str) else new_activity_id()


def new_activity_id() -> str:
    """A random 128-bit ID, the form of both job IDs and request activity IDs."""
    return secrets.token_hex(16)


def problem_response(request: Request, problem: Problem) -> Response:
    """The problem envelope `{data: null, error: {...}, debug: {activityID}}`."""
    body = envelope(
        None,
        problem.activity_id or request_activity_id(),
        error={
            "type": PROBLEM_BASE + problem.slug,
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
            "instance": request.url.path,
        },
    )
    return Response(
        orjson.dumps(body),
        status_code=problem.status,
        media_type="application/json",
        headers=problem.headers,
    )


def install_problem_handlers(app: FastAPI, store_retry_after_s: float) -> None:
    """Every error the app can answer with is a problem envelope, never a stack trace;
    `store_retry_after_s` is the `Retry-After` of a 503 while Redis is down."""

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RedisError):
            log.error("job store unavailable: %s", type(exc).__name__)
        return problem_response(request, problem_of(exc, store_retry_after_s))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(_describe(error) for error in exc.errors())
        return problem_response(request, Problem(400, "invalid-request", detail))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = _HTTP_ERRORS.get(exc.status_code)
        headers = dict(exc.headers or {})
        problem = Problem(
            exc.status_code,
            slug or "http-error",
            str(exc.detail),
            headers,
            title="" if slug else "HTTP Error",
        )
        return problem_response(request, problem)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        problem = Problem(500, "internal-error", "An unexpected error occurred.")
        return problem_response(request, problem)

    for error in PROBLEM_TYPES:
        app.add_exception_handler(error, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "header"))
    return f"{where}: {error.get('msg', 'invalid')}"
