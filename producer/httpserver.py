"""uvicorn's httptools protocol with bounds on the request head, as `claimpay api` serves.

While a request's head (request line and headers) is read: more than `max_headers`
headers, or more than `max_header_bytes` of head, get 431 and the connection is closed as
soon as the limit is crossed (nothing more is buffered); a head not complete within
`header_timeout_s` of its first byte (a client trickling its headers) gets 408 and the
connection is closed (a connection that sends nothing at all is closed then too).
uvicorn itself bounds neither. Bodies are bounded by
`producer.slowclients` and the intake limits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from claimpay.settings import get_settings

log = logging.getLogger("claimpay.producer")


REFUSED_LINGER_S = 2.0
"""How long a refused connection still reads (and drops) what its client sends."""


class HeadRefused(Exception):
    """Raised inside the parser to stop it once a request's head has been refused."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that refuses oversized or endless request heads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_headers = settings.max_headers
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout_s = settings.header_timeout_s
        self.reading_head = True
        self.head_bytes = 0
        self.header_count = 0
        self.refused = False
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a complete head is closed too.
        self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.reading_head:
            if self.head_timer is None:
                self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)
            self.head_bytes += len(data)
        super().data_received(data)
        # Still in the head after all of `data`: every byte so far belongs to it.
        if self.reading_head and not self.refused and self.head_bytes > self.max_header_bytes:
            self._refuse(431, b"Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > self.max_headers or len(name) + len(value) > self.max_header_bytes:
            self._refuse(431, b"Request Header Fields Too Large")
            raise HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True  # the next request's head, if any, starts here

    def send_400_response(self, msg: str) -> None:
        if not self.refused:  # after a refusal the parser's own error is no news
            super().send_400_response(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _head_done(self) -> None:
        self.reading_head = False
        self.head_bytes = 0
        self._cancel_head_timer()

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if not self.reading_head or self.refused:
            return
        if self.head_bytes:
            self._refuse(408, b"Request Timeout")
        elif self.cycle is None:  # connected, and silent ever since
            self.refused = True
            self.transport.close()

    def _refuse(self, status: int, reason: bytes) -> None:
        """Answer `status` in plain text, close the connection, and read nothing more."""
        self.refused = True
        self._cancel_head_timer()
        log.info("request head refused with %d", status)
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: "
            + str(len(reason)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + reason
        )
        # A lingering close: end our side after the answer, but go on reading (and dropping)
        # what the client still sends for a while. Closing at once with its bytes unread
        # would make the kernel reset the connection, and the client would lose the answer.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(REFUSED_LINGER_S, self.transport.close)
        else:
            self.transport.close()
