"""Every exported result says where its row was (`row`, 1-based); `include=input` gives the
failed rows back as they were sent; the JSON envelope stays the seed API's."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import orjson

from tests.factories import make_row, make_rows
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"
CSV = "text/csv"
NDJSON = "application/x-ndjson"


def finished_job(api: Api, rows: list[Any], headers: dict[str, str], **params: Any) -> str:
    response = api.client.put(BATCH, content=json.dumps(rows), headers=headers, params=params)
    assert response.status_code == 202, response.text
    api.run_queued()
    return str(response.json()["data"]["jobId"])


def mixed_rows() -> list[Any]:
    """Rows 2 and 5 fail (no key; a bad type), row 4 repeats row 1's key (applied)."""
    rows: list[Any] = make_rows(3, first_key=500)
    del rows[1]["claimPromptPay_Key"]
    rows.append(make_row(500, plan_ID="HMO"))
    rows.append({**make_row(504), "prompt_Pay_Duration": "thirty"})
    return rows


def get(api: Api, job_id: str, headers: dict[str, str], accept: str, **params: Any) -> Any:
    response = api.client.get(
        f"/jobs/{job_id}/results", headers={**headers, "Accept": accept}, params=params
    )
    assert response.status_code in (200, 207), response.text
    return response


def test_csv_and_ndjson_results_carry_the_row_position(api: Api, auth_headers: Headers) -> None:
    job_id = finished_job(api, mixed_rows(), auth_headers(), chunkSize=2)

    lines = list(csv.reader(io.StringIO(get(api, job_id, auth_headers(), CSV).text)))
    assert lines[0] == ["row", "id", "status", "body"]
    assert [line[:3] for line in lines[1:]] == [
        ["1", "500", "201"],
        ["2", "", "400"],
        ["3", "502", "201"],
        ["4", "500", "200"],
        ["5", "504", "400"],
    ]
    failed = list(
        csv.reader(io.StringIO(get(api, job_id, auth_headers(), CSV, status="failed").text))
    )
    assert [line[0] for line in failed[1:]] == ["2", "5"]

    items = [
        orjson.loads(line) for line in get(api, job_id, auth_headers(), NDJSON).text.splitlines()
    ]
    assert [item["row"] for item in items] == [1, 2, 3, 4, 5]
    assert items[3]["id"] == [{"key": "claimPromptPay_Key", "value": 500}]
    paged = get(api, job_id, auth_headers(), NDJSON, status="4xx", page=2, pageSize=1)
    assert [orjson.loads(line)["row"] for line in paged.text.splitlines()] == [5]


def test_the_json_envelope_stays_the_seeds(api: Api, auth_headers: Headers) -> None:
    job_id = finished_job(api, mixed_rows(), auth_headers())

    body = get(api, job_id, auth_headers(), "application/json").json()

    assert set(body) == {"data", "error", "debug"}
    assert {frozenset(item) for item in body["data"]} == {frozenset({"id", "status", "body"})}


def test_include_input_gives_failed_rows_back_as_sent(api: Api, auth_headers: Headers) -> None:
    rows = mixed_rows()
    job_id = finished_job(api, rows, auth_headers(), chunkSize=2)

    ndjson = get(api, job_id, auth_headers(), NDJSON, status="failed", include="input")
    items = [orjson.loads(line) for line in ndjson.text.splitlines()]
    assert [(item["row"], item["input"]) for item in items] == [(2, rows[1]), (5, rows[4])]

    envelope = get(api, job_id, auth_headers(), "application/json", include="input").json()
    inputs = [item["input"] for item in envelope["data"]]
    # Chunk 0 (rows 1, 2 and the repeated key of row 4) and chunk 2 (row 5) had a failure and
    # keep their rows; chunk 1 (row 3) fully succeeded and dropped its rows once applied.
    assert inputs == [rows[0], rows[1], None, rows[3], rows[4]]

    table = list(
        csv.reader(io.StringIO(get(api, job_id, auth_headers(), CSV, include="input").text))
    )
    assert table[0] == ["row", "id", "status", "body", "input"]
    assert json.loads(table[5][4]) == rows[4]
    assert table[3][4] == ""


def test_include_input_is_tenant_scoped_and_checked(api: Api, auth_headers: Headers) -> None:
    job_id = finished_job(api, mixed_rows(), auth_headers())
    url = f"/jobs/{job_id}/results"

    foreign = api.client.get(
        url, headers=auth_headers(database="acme"), params={"include": "input"}
    )
    assert foreign.status_code == 404
    unknown = api.client.get(url, headers=auth_headers(), params={"include": "everything"})
    assert unknown.status_code == 400
    anonymous = api.client.get(url, params={"include": "input"})
    assert anonymous.status_code == 401
