"""The OpenAPI document says what the API does: it validates, marks required headers,
describes every row field, declares each answer with its body and headers, and its
example batch is applied as is."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from claimpay.entities import ENTITIES
from claimpay.jobs import JobState
from tests.apidoc import check_answer
from tests.credentials import PASSWORD, USER, basic, user_config
from tests.factories import make_row, make_rows
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]
README = Path(__file__).resolve().parents[3] / "README.md"
NEEDS_DATABASE = {
    "submitClaimPromptPaysBatch",
    "submitPlaceCodesBatch",
    "listClaimPromptPays",
    "getClaimPromptPay",
    "listPlaceCodes",
    "getPlaceCodes",
    "authenticateUser",
}
"""The operations answering 400 without `vbasoftware-database`; the job routes only narrow
by it."""


@pytest.fixture
def document(api: Api) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    loaded: dict[str, Any] = response.json()
    return loaded


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, operation)."""
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }


def schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_the_document_validates(document: dict[str, Any]) -> None:
    validate(document)  # raises on any error (the old document had 4: `default: null`)
    for row in ("ClaimPromptPayIn", "PlaceCodesIn"):
        for field in ("entry_Date", "update_Date"):
            assert "default" not in schema(document, row)["properties"][field]


def test_operation_ids_are_short_and_explicit(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) == sum(len(ops) for ops in document["paths"].values())  # unique
    for operation_id in found:
        assert re.fullmatch(r"[a-z][A-Za-z]{2,30}", operation_id), operation_id
    assert {"submitClaimPromptPaysBatch", "getJob", "getJobResults", "retryJob"} <= set(found)


def test_the_database_header_is_required_where_the_api_needs_it(
    make_api: Callable[..., Api], document: dict[str, Any], auth_headers: Headers
) -> None:
    declared = {}
    for operation_id, (_, _, op) in operations(document).items():
        for parameter in op.get("parameters", []):
            if parameter["name"] == "vbasoftware-database":
                declared[operation_id] = parameter.get("required", False)
                assert parameter.get("description"), operation_id
                if declared[operation_id]:
                    assert parameter["schema"]["type"] == "string"  # never null
    assert {name for name, required in declared.items() if required} == NEEDS_DATABASE
    assert len(declared) == 12  # and the 5 job routes take it as optional
    # What the document says is what the API does: without the header, 400 ...
    api = make_api(users={USER: user_config()})
    no_db = auth_headers(database=None)
    assert api.client.put("/claim-prompt-pays-batch", json=[], headers=no_db).status_code == 400
    assert api.client.get("/claim-prompt-pays", headers=no_db).status_code == 400
    assert api.client.get("/place-codes/11", headers=no_db).status_code == 400
    login = {"x-api-key": no_db["x-api-key"], "Authorization": basic(USER, PASSWORD)}
    assert api.client.post("/user-authentication", headers=login).status_code == 400
    # ... while the job routes answer without it.
    job = api.client.put("/claim-prompt-pays-batch", json=[], headers=auth_headers())
    assert api.client.get(f"/jobs/{job.json()['data']['jobId']}", headers=no_db).status_code == 200
    assert api.client.get("/jobs", headers=no_db).status_code == 200


def test_every_row_field_is_described(document: dict[str, Any]) -> None:
    for spec in ENTITIES.values():
        properties = schema(document, spec.row_model.__name__)["properties"]
        assert set(properties) == {f.alias for f in spec.row_model.model_fields.values()}
        for name, prop in properties.items():
            assert len(prop.get("description", "")) > 10, (spec.name, name)
    duration_type = schema(document, "ClaimPromptPayIn")["properties"]["prompt_Pay_Duration_Type"]
    assert "D = Day, M = Month, Y = Year" in duration_type["description"]  # the seed's words


def test_the_documented_example_batch_is_applied_as_is(
    api: Api, document: dict[str, Any], auth_headers: Headers
) -> None:
    for spec in ENTITIES.values():
        operation = document["paths"][spec.batch_path]["put"]
        example = operation["requestBody"]["content"]["application/json"]["example"]
        database = next(
            p["examples"]["demo"]["value"]
            for p in operation["parameters"]
            if p["name"] == "vbasoftware-database"
        )
        accepted = api.client.put(
            spec.batch_path, content=json.dumps(example), headers=auth_headers(database=database)
        )
        assert accepted.status_code == 202, accepted.text
        api.run_queued()
        job_id = accepted.json()["data"]["jobId"]
        results = api.client.get(f"/jobs/{job_id}/results", headers=auth_headers())
        assert [item["status"] for item in results.json()["data"]] == [201] * len(example)
        for row in example:
            key = row[spec.key_field]
            stored = api.client.get(f"/{spec.name}/{key}", headers=auth_headers()).json()["data"]
            assert {name: stored[name] for name in row if "Date" not in name} == {
                name: value for name, value in row.items() if "Date" not in name
            }


def test_job_states_are_those_of_the_code_and_of_the_readme(document: dict[str, Any]) -> None:
    states = [state.value for state in JobState]
    status_state = schema(document, "JobStatus")["properties"]["state"]
    state_enum = schema(document, status_state["$ref"].rsplit("/", 1)[1])["enum"]
    assert state_enum == states
    accepted = schema(document, "JobAccepted")["properties"]["state"]["enum"]
    assert set(accepted) == set(states) - {"receiving"}  # a 202 comes after the rows are in
    readme_row = next(
        line for line in README.read_text().splitlines() if line.startswith("| `GET /jobs/{jobId}`")
    )
    listed = re.findall(r"`(\w+)`", readme_row.split("`state` is", 1)[1].split(".", 1)[0])
    assert listed == states


def test_every_success_answer_has_a_typed_body(document: dict[str, Any]) -> None:
    for operation_id, (_, _, op) in operations(document).items():
        for status, answer in op["responses"].items():
            for media, content in answer.get("content", {}).items():
                assert content.get("schema"), (operation_id, status, media)
            if status.startswith("2"):
                assert answer.get("content"), (operation_id, status)
    job_status = schema(document, "JobStatus")["properties"]
    assert {"dryRun", "retries", "retriedRows"} <= set(job_status)
    assert job_status["submittedAt"]["format"] == "date-time"
    assert "attempts" in schema(document, "RowResult")["properties"]
    value = schema(document, "KeyValue")["properties"]["value"]
    assert {option.get("type") for option in value["anyOf"]} == {"integer", "string", "null"}
    results = operations(document)["getJobResults"][2]["responses"]
    assert set(results["207"]["content"]) == {"application/json"}
    assert set(results["200"]["content"]) == {"text/csv", "application/x-ndjson"}


def test_answers_and_headers_sent_are_declared(
    make_api: Callable[..., Api], document: dict[str, Any], auth_headers: Headers
) -> None:
    api = make_api(users={USER: user_config()})
    sent: list[tuple[str, str, Any]] = []

    def call(method: str, path: str, url: str, **kwargs: Any) -> Any:
        response = api.client.request(method, url, **kwargs)
        sent.append((method, path, response))
        return response

    headers = auth_headers()
    batch = "/claim-prompt-pays-batch"
    rows = [*make_rows(2), {"claimPromptPay_Key": "x"}]
    job_id = call("PUT", batch, batch, json=rows, headers=headers).json()["data"]["jobId"]
    call("GET", "/jobs/{job_id}/results", f"/jobs/{job_id}/results", headers=headers)  # 202
    api.run_queued()
    waited = {**headers, "Prefer": "wait=1"}
    call("PUT", batch, batch, json=[make_row(9)], headers=waited)  # 202, the wait honoured
    call("GET", "/jobs/{job_id}", f"/jobs/{job_id}", headers=waited)
    results = "/jobs/{job_id}/results"
    call("GET", results, f"/jobs/{job_id}/results", headers=headers)
    call("GET", results, f"/jobs/{job_id}/results?page=1&pageSize=1", headers=headers)
    for accept in ("text/csv", "application/x-ndjson"):
        call("GET", results, f"/jobs/{job_id}/results", headers={**headers, "Accept": accept})
    retry = "/jobs/{job_id}/retry"
    call("POST", retry, f"/jobs/{job_id}/retry?statuses=400", headers=headers)  # 202
    call("POST", retry, f"/jobs/{job_id}/retry?statuses=400", headers=headers)  # 409 running
    api.run_queued()
    call("POST", retry, f"/jobs/{job_id}/retry?statuses=503", headers=headers)  # 200, none
    call("DELETE", "/jobs/{job_id}", f"/jobs/{job_id}", headers=headers)  # 409 completed
    call("GET", "/jobs", "/jobs", headers=headers)
    call("GET", "/claim-prompt-pays", "/claim-prompt-pays", headers=headers)
    call("GET", "/claim-prompt-pays/{key}", "/claim-prompt-pays/1", headers=headers)
    call("GET", "/jobs", "/jobs", headers={"x-api-key": "wrong"})  # 401
    login = {"x-api-key": headers["x-api-key"], "Authorization": basic(USER, PASSWORD)}
    call("POST", "/user-authentication", "/user-authentication", headers={**login, **db(headers)})
    for path in ("/health/live", "/health/ready", "/metrics"):
        call("GET", path, path)
    statuses = set()
    for method, path, response in sent:
        media = response.headers.get("content-type")
        check_answer(document, method, path, response.status_code, response.headers, media)
        statuses.add((path, response.status_code))
    assert {(batch, 202), (results, 202), (results, 207), (results, 200)} <= statuses
    assert {(retry, 202), (retry, 409), (retry, 200)} <= statuses
    assert {("/jobs", 401), ("/jobs/{job_id}", 409), ("/user-authentication", 200)} <= statuses


def db(headers: dict[str, str]) -> dict[str, str]:
    return {"vbasoftware-database": headers["vbasoftware-database"]}
