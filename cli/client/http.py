"""A small typed client of the claimpay API over httpx.

Every error answer becomes an `ApiProblem` (the problem details of the error envelope);
a server that cannot be reached becomes `ApiUnreachable`. Reads (`GET`) are retried on
429/502/503/504, as the API family tells its clients to, honouring `Retry-After`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from cli.client.errors import ApiProblem, ApiUnreachable

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_URL = "http://127.0.0.1:8000"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where the API is and who calls it: both the API key and the bearer token."""

    url: str
    api_key: str
    token: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How reads are retried: `attempts` in all, waiting `base_s`, 2x, 4x ... at most `max_s`
    (or the server's `Retry-After`, within the same cap)."""

    attempts: int = 4
    base_s: float = 0.5
    max_s: float = 10.0

    def delay_s(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_s)
        return min(self.base_s * 2.0**attempt, self.max_s)


@dataclass(frozen=True, slots=True)
class ResultsStream:
    """`GET /jobs/{id}/results`: the job's status while it runs, else the NDJSON body's bytes."""

    pending: dict[str, Any] | None
    chunks: Iterable[bytes] = field(default=())


class ApiClient:
    """The calls the CLI makes. Use as a context manager (it owns a connection pool)."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = credentials.url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "x-api-key": credentials.api_key,
                "Authorization": f"Bearer {credentials.token}",
            },
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            transport=transport,
        )
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def submit(
        self,
        entity: str,
        database: str,
        body: Iterable[bytes],
        chunk_size: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """`PUT /<entity>-batch` with a streamed body; the 202 answer's `data`."""
        params: dict[str, Any] = {}
        if chunk_size is not None:
            params["chunkSize"] = chunk_size
        if dry_run:
            params["dryRun"] = "true"
        request = self._http.build_request(
            "PUT",
            f"/{entity}-batch",
            content=body,
            params=params or None,
            headers={"vbasoftware-database": database, "Content-Type": "application/json"},
        )
        return _data(self._send(request, retry=False))

    def jobs(
        self, database: str | None, state: str | None, page: int, page_size: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """`GET /jobs`: (one page of job statuses, newest first; the `x-pagination` totals)."""
        params: dict[str, Any] = {"page": page, "pageSize": page_size}
        if state:
            params["state"] = state
        request = self._http.build_request("GET", "/jobs", params=params, headers=_db(database))
        response = self._send(request, retry=True)
        parsed = orjson.loads(response.content)
        jobs = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(jobs, list):
            raise ApiProblem(response.status_code, "Unexpected answer", "no `data` list")
        try:
            pagination = orjson.loads(response.headers.get("x-pagination", "{}"))
        except orjson.JSONDecodeError:
            pagination = {}
        return jobs, pagination if isinstance(pagination, dict) else {}

    def job(self, job_id: str, database: str | None = None) -> dict[str, Any]:
        """`GET /jobs/{id}`: the job's state and counts."""
        request = self._http.build_request("GET", _job_path(job_id), headers=_db(database))
        return _data(self._send(request, retry=True))

    def cancel(self, job_id: str, database: str | None = None) -> tuple[int, dict[str, Any]]:
        """`DELETE /jobs/{id}`: (202 cancelling or 200 cancelled, the job's status)."""
        request = self._http.build_request("DELETE", _job_path(job_id), headers=_db(database))
        response = self._send(request, retry=False)
        return response.status_code, _data(response)

    def retry(
        self, job_id: str, database: str | None = None, statuses: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """`POST /jobs/{id}/retry[?statuses=]`: (202 queued or 200 nothing to retry, the
        job's status with `retriedRows`)."""
        path = _job_path(job_id) + "/retry"
        params = {"statuses": statuses} if statuses else None
        request = self._http.build_request("POST", path, params=params, headers=_db(database))
        response = self._send(request, retry=False)
        return response.status_code, _data(response)

    @contextlib.contextmanager
    def results(
        self,
        job_id: str,
        database: str | None = None,
        *,
        status: str | None = None,
        include_input: bool = False,
    ) -> Iterator[ResultsStream]:
        """`GET /jobs/{id}/results` as NDJSON (one item per line, with its `row`), streamed:
        never read whole. `status` filters (`failed`, `409,503` ...); `include_input` adds
        each row as it was sent (`input`)."""
        path = _job_path(job_id) + "/results"
        params: dict[str, str] = {}
        if status:
            params["status"] = status
        if include_input:
            params["include"] = "input"
        headers = {**_db(database), "Accept": NDJSON}
        request = self._http.build_request("GET", path, params=params or None, headers=headers)
        response = self._send(request, retry=True, stream=True)
        try:
            if response.status_code == 202:
                yield ResultsStream(pending=_data(response, read=True))
            else:
                yield ResultsStream(pending=None, chunks=response.iter_bytes())
        finally:
            response.close()

    def _send(self, request: httpx.Request, *, retry: bool, stream: bool = False) -> httpx.Response:
        attempts = self._retry.attempts if retry else 1
        for attempt in range(attempts):
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise ApiUnreachable(_unreachable(self.base_url, exc)) from exc
            if response.status_code in RETRYABLE_STATUSES and attempt + 1 < attempts:
                response.close()
                self._sleep(self._retry.delay_s(attempt, response.headers.get("Retry-After")))
                continue
            if response.is_error:
                body = response.read()
                response.close()
                raise ApiProblem.from_body(response.status_code, response.reason_phrase, body)
            if not stream:
                response.read()
                response.close()
            return response
        raise AssertionError("unreachable")  # pragma: no cover


def _job_path(job_id: str) -> str:
    return "/jobs/" + quote(job_id, safe="")


def _db(database: str | None) -> dict[str, str]:
    return {"vbasoftware-database": database} if database else {}


def _data(response: httpx.Response, read: bool = False) -> dict[str, Any]:
    body = response.read() if read else response.content
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiProblem(
            response.status_code, "Unexpected answer", "the body is not JSON"
        ) from None
    data = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(data, dict):
        raise ApiProblem(response.status_code, "Unexpected answer", "no `data` object")
    return data


def _unreachable(url: str, exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        reason = "connection refused" if "refused" in str(exc).lower() else str(exc) or "no route"
        return (
            f"cannot reach the claimpay API at {url} ({reason}); is `claimpay api` running? "
            "Point --url (or CLAIMPAY_URL) at it."
        )
    if isinstance(exc, httpx.TimeoutException):
        return f"the claimpay API at {url} did not answer in time ({type(exc).__name__})"
    return f"the connection to the claimpay API at {url} failed ({type(exc).__name__}: {exc})"
