"""Request-level errors as RFC 7807 problem details inside the seed's envelope."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from claimpay.envelope import envelope
from claimpay.logs import current_context

PROBLEM_BASE = "urn:claimpay:problem:"


class Problem(Exception):
    """Raised by routes and dependencies to answer with a problem envelope."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        activity_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.activity_id = activity_id
        self.headers = headers or {}


def request_activity_id() -> str:
    """The activity ID the request's logs carry (see `producer.middleware`), else a new one."""
    bound = current_context().get("activityID")
    return bound if isinstance(bound, str) else new_activity_id()


def new_activity_id() -> str:
    """A random 128-bit ID, the form of both job IDs and request activity IDs."""
    return secrets.token_hex(16)


def problem_response(request: Request, problem: Problem) -> Response:
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


_HTTP_TITLES = {
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
}


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app can answer with is a problem envelope, never a stack trace."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(_describe(error) for error in exc.errors())
        return problem_response(request, Problem(400, "invalid-request", "Bad Request", detail))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug, title = _HTTP_TITLES.get(exc.status_code, ("http-error", "HTTP Error"))
        return problem_response(
            request,
            Problem(exc.status_code, slug, title, str(exc.detail), headers=dict(exc.headers or {})),
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return problem_response(
            request,
            Problem(
                500, "internal-error", "Internal Server Error", "An unexpected error occurred."
            ),
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "header"))
    return f"{where}: {error.get('msg', 'invalid')}"
