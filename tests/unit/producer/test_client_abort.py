"""A request whose client hung up while its body was read is a 499, not an error."""

from __future__ import annotations

import logging

import anyio
import pytest
from prometheus_client import CollectorRegistry
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from producer.metrics import ApiMetrics
from producer.middleware import CLIENT_CLOSED_REQUEST, RequestTelemetry, client_went_away


def test_a_disconnect_alone_or_grouped_is_the_client_going_away() -> None:
    assert client_went_away(ClientDisconnect())
    assert client_went_away(BaseExceptionGroup("tasks", [ClientDisconnect(), ClientDisconnect()]))
    assert not client_went_away(BaseExceptionGroup("tasks", [ClientDisconnect(), KeyError()]))
    assert not client_went_away(RuntimeError())


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run(app_error: BaseException) -> tuple[float | None, list[logging.LogRecord]]:
    registry = CollectorRegistry()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise app_error

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: object) -> None:
        raise AssertionError("nothing is sent to a client that is gone")

    telemetry = RequestTelemetry(app, ApiMetrics(registry))
    handler = Recorder()
    access = logging.getLogger("claimpay.access")
    saved = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        scope = {"type": "http", "method": "PUT", "path": "/claim-prompt-pays-batch"}
        anyio.run(telemetry, scope, receive, send)
    finally:
        access.removeHandler(handler)
        access.setLevel(saved)
    records = handler.records
    labels = {"method": "PUT", "route": "<unmatched>", "status": str(CLIENT_CLOSED_REQUEST)}
    return registry.get_sample_value("claimpay_http_requests_total", labels), records


def test_the_telemetry_counts_a_hang_up_as_499_with_one_info_line() -> None:
    counted, records = run(ClientDisconnect())
    assert counted == 1.0
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.INFO, None)]
    assert "499" in records[0].getMessage()


def test_any_other_error_still_propagates() -> None:
    with pytest.raises(KeyError):
        run(KeyError("boom"))
