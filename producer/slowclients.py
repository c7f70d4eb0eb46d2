"""Bounds on what a client may make the API wait for, or hold, before it is authenticated.

A pure ASGI middleware (whatever the server):

- a request with more than `max_headers` headers, or headers larger than
  `max_header_bytes` in all, gets 431 (`claimpay api` refuses them earlier, while
  reading them: `producer.httpserver`);
- a request body must keep coming: a wait for the next part of it longer than
  `body_idle_timeout_s`, or a body arriving more slowly on average than
  `body_min_bytes_per_s` once the first `body_idle_timeout_s` have passed (a trickle of a
  byte every few seconds), ends the request with 408 and closes the connection. Time the
  API spends on the body itself does not count: only waits for the client do.
"""

from __future__ import annotations

import logging
import time

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer.errors import BodyStalled, HeadersTooLarge, RequestError
from producer.problems import problem_of, problem_response

log = logging.getLogger("claimpay.producer")


class _Stalled(Exception):
    """Raised to the app by `receive` when its request body stops coming; this middleware
    answers it (`BodyStalled`, 408) unless the response has started."""


class SlowClientGuard:
    """Header bounds (431) and a body idle timeout with a minimum rate (408)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_headers: int,
        max_header_bytes: int,
        body_idle_timeout_s: float,
        body_min_bytes_per_s: int,
    ) -> None:
        self.app = app
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self.idle_s = body_idle_timeout_s
        self.min_rate = body_min_bytes_per_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if len(headers) > self.max_headers or (
            sum(len(name) + len(value) + 4 for name, value in headers) > self.max_header_bytes
        ):
            refused = HeadersTooLarge(
                f"At most {self.max_headers} headers of {self.max_header_bytes} bytes in all."
            )
            await _refuse(refused, scope, receive, send)
            return
        started = False

        async def watch_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._bounded(receive), watch_send)
        except _Stalled:
            log.info("request body stalled: the request is dropped")
            if started:
                raise
            stalled = BodyStalled(
                f"The request body stopped coming for {self.idle_s:g}s, or came more slowly "
                f"than {self.min_rate} bytes/s."
            )
            await _refuse(stalled, scope, receive, send)

    def _bounded(self, receive: Receive) -> Receive:
        waited = 0.0  # seconds spent waiting for the client, not working on what it sent
        received = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal waited, received, complete
            if complete:  # the body is in: waits for a disconnect are not the client's delay
                return await receive()
            budget = self.idle_s - waited
            if self.min_rate:
                budget += received / self.min_rate
            else:
                budget = self.idle_s
            started = time.monotonic()
            with anyio.move_on_after(max(0.0, min(self.idle_s, budget))) as scope:
                message = await receive()
            waited += time.monotonic() - started
            if scope.cancelled_caught:
                raise _Stalled
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            return message

        return bounded_receive


async def _refuse(error: RequestError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer `error` as its problem (`producer.problems`) and close the connection: this
    middleware sits outside the app's exception handlers."""
    problem = problem_of(error, retry_after_s=0)
    problem.headers["Connection"] = "close"
    await problem_response(Request(scope), problem)(scope, receive, send)
