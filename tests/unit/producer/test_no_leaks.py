"""No row values, keys, tokens or secrets in logs or error bodies, and never a stack trace
in an error body, even when a chunk or a route fails unexpectedly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from claimpay.logs import JsonFormatter, TextFormatter
from tests.factories import API_KEY, JWT_SECRET, make_row
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"
CANARIES = ("CANARY-TAX-77", "CANARYGRP", "canary-loader")


def canary_rows() -> list[dict[str, Any]]:
    return [
        make_row(901, tax_ID=CANARIES[0], group_ID=CANARIES[1], entry_User=CANARIES[2]),
        make_row(902, prompt_Pay_Duration_Type=CANARIES[1]),  # invalid: a 400 row result
        {"claimPromptPay_Key": CANARIES[0]},
    ]


def rendered(records: list[logging.LogRecord]) -> str:
    """The records as the JSON and text formatters write them, and their raw arguments."""
    lines = []
    for record in records:
        lines.append(JsonFormatter().format(record))
        lines.append(TextFormatter().format(record))
        lines.append(repr(record.args))
    return "\n".join(lines)


def secrets_in(text: str, headers: dict[str, str]) -> list[str]:
    token = headers["Authorization"].removeprefix("Bearer ")
    found = [canary for canary in CANARIES if canary in text]
    found += [name for name, value in [("key", API_KEY), ("secret", JWT_SECRET)] if value in text]
    return found + (["token"] if token in text else [])


def test_a_batch_logs_no_row_values_and_no_secrets(
    api: Api, auth_headers: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    headers = auth_headers()
    caplog.set_level(logging.DEBUG)
    job_id = api.client.put(BATCH, json=canary_rows(), headers=headers).json()["data"]["jobId"]
    api.run_queued()
    results = api.client.get(f"/jobs/{job_id}/results", headers=headers).json()["data"]
    assert [item["status"] for item in results] == [201, 400, 400]
    assert caplog.records
    assert secrets_in(rendered(caplog.records), headers) == []


def test_a_failing_chunk_logs_its_error_without_the_rows_values(
    api: Api,
    auth_headers: Headers,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import worker.chunks

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"cannot apply row with tax_ID={CANARIES[0]}")

    monkeypatch.setattr(worker.chunks, "apply_valid", explode)
    headers = auth_headers()
    caplog.set_level(logging.DEBUG)
    job_id = api.client.put(BATCH, json=canary_rows(), headers=headers).json()["data"]["jobId"]
    api.run_queued()
    results = api.client.get(f"/jobs/{job_id}/results", headers=headers)
    assert [item["status"] for item in results.json()["data"]] == [500, 400, 400]
    assert CANARIES[0] not in results.text
    assert any(record.exc_info for record in caplog.records)
    assert secrets_in(rendered(caplog.records), headers) == []


def test_an_unexpected_error_answers_500_without_trace_or_message(
    api: Api, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(job_id: str) -> Any:
        raise RuntimeError(f"boom {JWT_SECRET} {CANARIES[0]}")

    monkeypatch.setattr(api.store, "meta", explode)
    response = api.client.get("/jobs/" + "a" * 32, headers=auth_headers())
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["detail"] == "An unexpected error occurred."
    for leaked in ("Traceback", "RuntimeError", "boom", JWT_SECRET, CANARIES[0], 'File "'):
        assert leaked not in response.text


@pytest.mark.parametrize("buffer_bytes", [0, 2**20], ids=["a run per row", "one run"])
@pytest.mark.parametrize(
    "body",
    [
        b'[{"claimPromptPay_Key": 1, "tax_ID": CANARY-TAX-77}]',
        b'[{"claimPromptPay_Key": 1, "tax_ID": "CANARY-TAX-77"',
        b'[{"claimPromptPay_Key": 1, "tax_ID": "CANARY-TAX-77"}] CANARYGRP',
        b'[{"claimPromptPay_Key": 1, "tax_ID": "CANARY-TAX-77", "tax_ID": "CANARYGRP"}]',
        b"CANARYGRP",
    ],
)
def test_error_bodies_never_quote_the_request_body(
    make_api: Callable[..., Api], auth_headers: Headers, buffer_bytes: int, body: bytes
) -> None:
    api = make_api(intake_buffer_bytes=buffer_bytes)
    response = api.client.put(BATCH, content=body, headers=auth_headers())
    assert response.status_code == 400
    assert secrets_in(response.text, auth_headers()) == []
    assert orjson.loads(response.content)["error"]["detail"]


def test_the_settings_repr_hides_secrets() -> None:
    from tests.factories import make_settings

    settings = make_settings(flower_basic_auth="ops:flower-pw", jwt_private_key="PRIVATE-PEM")
    text = repr(settings) + str(settings.model_dump())
    for secret in (JWT_SECRET, "flower-pw", "PRIVATE-PEM"):
        assert secret not in text


def test_a_chunk_whose_rows_cannot_be_checked_ends_with_500s_at_once(
    api: Api, auth_headers: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.chunks

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"cannot check tax_ID={CANARIES[0]}")

    monkeypatch.setattr(worker.chunks, "split_valid_stored", broken)
    headers = auth_headers()
    job_id = api.client.put(BATCH, json=canary_rows(), headers=headers).json()["data"]["jobId"]
    api.run_queued()
    status = api.client.get(f"/jobs/{job_id}", headers=headers).json()["data"]
    assert status["state"] == "completed"
    results = api.client.get(f"/jobs/{job_id}/results", headers=headers)
    assert {item["status"] for item in results.json()["data"]} == {500}
    assert CANARIES[0] not in results.text
