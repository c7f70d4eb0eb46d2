"""Per-request plumbing: an activity ID bound to the request's logs, metrics, an access log.

A pure ASGI middleware (no body buffering, streaming responses pass through): it binds a
fresh `activityID` to the logging context, so every line logged while answering carries
it (and error envelopes reuse it), then counts the request by route template and status.
A client that hangs up while its body is read is counted as 499 with one INFO line, not
as a 500 with a traceback.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimpay.logs import log_context
from producer.metrics import ApiMetrics
from producer.problems import new_activity_id

access_log = logging.getLogger("claimpay.access")

CLIENT_CLOSED_REQUEST = 499
"""The status recorded (never sent) for a request whose client hung up before the answer,
as nginx logs it."""
UNMATCHED = "<unmatched>"
"""The route label of requests no route matched: raw paths never become labels."""
QUIET_PREFIXES = ("/health", "/metrics")
"""Probes and scrapes are logged at DEBUG: they would drown the rest."""


class RequestTelemetry:
    """Activity ID, request metrics and one access log line per HTTP request."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with log_context(activityID=new_activity_id()):
            try:
                await self.app(scope, receive, send_and_watch)
            except BaseException as exc:
                if not client_went_away(exc):
                    raise
                # Nobody is left to answer: an abort is the client's doing, not an error.
                status = CLIENT_CLOSED_REQUEST
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = str(scope.get("method", "GET"))
        route = route_template(scope)
        self.metrics.observe(method, route, status, seconds)
        level = logging.DEBUG if route.startswith(QUIET_PREFIXES) else logging.INFO
        job_id = (scope.get("path_params") or {}).get("job_id")
        aborted = " (the client closed the connection)" if status == CLIENT_CLOSED_REQUEST else ""
        with log_context(jobId=job_id if isinstance(job_id, str) else None):
            access_log.log(
                level,
                "%s %s %d %.1fms%s",
                method,
                route,
                status,
                seconds * 1000,
                aborted,
                extra={"method": method, "route": route, "status": status, "ms": seconds * 1000},
            )


def client_went_away(exc: BaseException) -> bool:
    """Whether `exc` only says the client disconnected while its request was being read
    (also when a task group wrapped it)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(client_went_away(inner) for inner in exc.exceptions)
    return isinstance(exc, ClientDisconnect)


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/jobs/{job_id}`), else `<unmatched>`."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED
