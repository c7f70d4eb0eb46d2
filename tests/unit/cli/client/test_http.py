"""The API client: problem details from error envelopes, retried reads, streamed bodies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from cli.client.errors import ApiProblem, ApiUnreachable
from cli.client.http import ApiClient, Credentials, RetryPolicy

CREDENTIALS = Credentials(url="http://api.test/", api_key="key-1", token="tok-1")
JOB = {"jobId": "a" * 32, "state": "running", "total": 10, "processed": 4}

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, slept: list[float] | None = None) -> ApiClient:
    return ApiClient(
        CREDENTIALS,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=3, base_s=0.25),
        sleep=(slept.append if slept is not None else lambda _: None),
    )


def problem(status: int, title: str, detail: str) -> httpx.Response:
    body = {
        "data": None,
        "error": {"type": "urn:x", "title": title, "status": status, "detail": detail},
        "debug": {"activityID": "act-9"},
    }
    return httpx.Response(status, json=body)


def test_submit_streams_the_body_with_every_header_and_the_chunk_size() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["body"] = json.loads(request.read())
        seen["headers"] = request.headers
        seen["url"] = str(request.url)
        return httpx.Response(202, json={"data": {"jobId": "j1", "state": "queued", "total": 2}})

    def body() -> Iterator[bytes]:
        yield b'[{"claimPromptPay_Key": 1},'
        yield b'{"claimPromptPay_Key": 2}]'

    with client(handler) as api:
        accepted = api.submit("claim-prompt-pays", "demo", body(), chunk_size=250)
    assert accepted["jobId"] == "j1"
    assert seen["url"] == "http://api.test/claim-prompt-pays-batch?chunkSize=250"
    headers = seen["headers"]
    assert isinstance(headers, httpx.Headers)
    assert headers["vbasoftware-database"] == "demo"
    assert headers["x-api-key"] == "key-1"
    assert headers["authorization"] == "Bearer tok-1"
    assert headers["content-type"] == "application/json"
    assert headers["transfer-encoding"] == "chunked"
    assert seen["body"] == [{"claimPromptPay_Key": 1}, {"claimPromptPay_Key": 2}]


def test_an_error_answer_raises_its_problem_details() -> None:
    with (
        client(lambda _: problem(401, "Unauthorized", "Unknown API key.")) as api,
        pytest.raises(ApiProblem) as info,
    ):
        api.job("a" * 32)
    assert (info.value.status, info.value.title) == (401, "Unauthorized")
    assert info.value.detail == "Unknown API key."
    assert info.value.activity_id == "act-9"


def test_an_error_answer_without_an_envelope_keeps_its_text() -> None:
    with (
        client(lambda _: httpx.Response(502, text="<html>Bad gateway</html>")) as api,
        pytest.raises(ApiProblem, match=r"^502 Bad Gateway: <html>Bad gateway</html>$"),
    ):
        api.cancel("a" * 32)


def test_reads_are_retried_on_503_honouring_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "2"}, json={}),
            httpx.Response(429, json={}),
            httpx.Response(200, json={"data": JOB}),
        ]
    )
    slept: list[float] = []
    with client(lambda _: next(answers), slept) as api:
        assert api.job("a" * 32) == JOB
    assert slept == [2.0, 0.5]


def test_reads_give_up_after_the_last_attempt() -> None:
    with (
        client(lambda _: problem(503, "Service Unavailable", "Redis is down.")) as api,
        pytest.raises(ApiProblem, match="Redis is down"),
    ):
        api.job("a" * 32)


def test_writes_are_not_retried() -> None:
    calls = 0

    def handler(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return problem(503, "Service Unavailable", "Redis is down.")

    with client(handler) as api, pytest.raises(ApiProblem):
        api.submit("claim-prompt-pays", "demo", iter([b"[]"]))
    assert calls == 1


def test_a_refused_connection_is_one_line_with_a_hint() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with client(refuse) as api, pytest.raises(ApiUnreachable) as info:
        api.job("a" * 32)
    message = str(info.value)
    assert "\n" not in message
    assert "connection refused" in message
    assert "CLAIMPAY_URL" in message


def test_results_of_a_running_job_are_pending_with_its_status() -> None:
    with (
        client(lambda _: httpx.Response(202, json={"data": JOB})) as api,
        api.results("a" * 32) as stream,
    ):
        assert stream.pending == JOB


def test_results_of_a_finished_job_are_streamed_bytes() -> None:
    body = b'{"data":[],"error":null,"debug":{"activityID":"x"}}'
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(207, content=body)

    with client(handler) as api, api.results("a" * 32, "demo") as stream:
        assert stream.pending is None
        assert b"".join(stream.chunks) == body
    assert seen[0].url.path == f"/jobs/{'a' * 32}/results"
    assert seen[0].headers["vbasoftware-database"] == "demo"


def test_job_ids_are_quoted_into_the_path() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(202, json={"data": JOB})

    with client(handler) as api:
        api.retry("../admin")
    assert seen == ["/jobs/..%2Fadmin/retry"]


def test_the_new_calls_send_what_the_api_expects() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/jobs":
            headers = {"x-pagination": json.dumps({"TotalCount": 1, "CurrentPage": 2})}
            return httpx.Response(200, json={"data": [JOB]}, headers=headers)
        if request.url.path.endswith("/retry"):
            return httpx.Response(200, json={"data": {**JOB, "retriedRows": 0}})
        if request.url.path.endswith("/results"):
            return httpx.Response(200, content=b'{"row": 1}\n')
        return httpx.Response(202, json={"data": {"jobId": "j1", "state": "queued", "total": 2}})

    with client(handler) as api:
        api.submit("claim-prompt-pays", "demo", [b"[]"], dry_run=True)
        listed, pagination = api.jobs("acme", "completed", 2, 5)
        code, retried = api.retry("a" * 32, None, "409,503")
        with api.results("a" * 32, "demo", status="failed", include_input=True) as stream:
            body = b"".join(stream.chunks)

    assert seen[0].url.params["dryRun"] == "true"
    assert (listed, pagination) == ([JOB], {"TotalCount": 1, "CurrentPage": 2})
    assert dict(seen[1].url.params) == {"page": "2", "pageSize": "5", "state": "completed"}
    assert seen[1].headers["vbasoftware-database"] == "acme"
    assert (code, retried["retriedRows"]) == (200, 0)
    assert seen[2].url.params["statuses"] == "409,503"
    assert "vbasoftware-database" not in seen[2].headers
    assert dict(seen[3].url.params) == {"status": "failed", "include": "input"}
    assert seen[3].headers["accept"] == "application/x-ndjson"
    assert body == b'{"row": 1}\n'
