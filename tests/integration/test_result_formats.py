"""Results as files: `Accept: text/csv` and `application/x-ndjson` stream a job's results
(ids, status, body) in input order, for a 100,000-row job, in bounded server memory;
`?status=` filters them in every format.

The results are read from a real `claimpay api` subprocess, incrementally, so that its
memory can be read from /proc: the peak resident set (VmHWM) is reset before each read and
compared after it."""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET, make_row, make_rows
from tests.integration.api_process import ApiProcess, running_api
from tests.integration.batches import accepted_job, keys_of, put_batch, statuses
from tests.integration.conftest import WorkerProcess, wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROWS = 100_000
FIRST = 2_000_000
BAD_EVERY = 1_000
"""Every 1000th row is invalid (400, with a body holding commas and quotes)."""
GROWTH_LIMIT_KIB = 40 * 1024
"""Materialising the 100k expanded results at once costs about 45 MiB of Python objects
plus 8 MiB of JSON text (measured); streaming a chunk at a time needs a few MiB."""
BAD_BODY = "prompt_Pay_Duration_Type: Input should be 'D', 'M' or 'Y'"
CSV = "text/csv"
NDJSON = "application/x-ndjson"
Row = tuple[int, int, str]


def headers(**extra: str) -> dict[str, str]:
    token = mint_token(JWT_SECRET, "formats", 600)
    return {"x-api-key": API_KEY, "Authorization": f"Bearer {token}", **extra}


def is_bad(index: int) -> bool:
    return index % BAD_EVERY == BAD_EVERY - 1


@pytest.fixture(scope="module")
def big_job(client: TestClient) -> str:
    """A completed job of 100,000 rows on PostgreSQL, 100 of them invalid."""
    rows: list[Any] = make_rows(ROWS, first_key=FIRST)
    for index in range(BAD_EVERY - 1, ROWS, BAD_EVERY):
        rows[index] = make_row(FIRST + index, prompt_Pay_Duration_Type="W")
    acme = headers(**{"vbasoftware-database": "acme"})
    job_id = accepted_job(put_batch(client, rows, acme, {"chunkSize": 5_000}))
    status = wait_for_job(client, job_id, acme, timeout_s=120)
    assert (status["created"], status["failed"]) == (ROWS - 100, 100)
    return job_id


@pytest.fixture(scope="module")
def api(
    stack_env: dict[str, str],
    worker_process: WorkerProcess,
    big_job: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiProcess]:
    """`claimpay api`, warmed up with one small page of each format."""
    log_path: Path = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(stack_env, log_path) as running:
        for accept in (CSV, NDJSON, "application/json"):
            warm = httpx.get(
                f"{running.base_url}/jobs/{big_job}/results?page=1&pageSize=10",
                headers=headers(Accept=accept),
            )
            assert warm.status_code in (200, 207), warm.text
        yield running


def reset_peak_memory(api: ApiProcess) -> None:
    """Make VmHWM start again from the current RSS (Linux `clear_refs` 5); where that is
    not allowed, the peak so far stays the baseline, which only makes the check laxer."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{api.process.pid}/clear_refs").write_text("5")


def csv_rows(response: httpx.Response) -> Iterator[Row]:
    reader = csv.reader(response.iter_lines())
    assert next(reader) == ["row", "id", "status", "body"]
    for number, (row, key, status, body) in enumerate(reader, start=1):
        assert int(row) == number
        yield int(key), int(status), body


def ndjson_rows(response: httpx.Response) -> Iterator[Row]:
    for line in response.iter_lines():
        if line:
            item = orjson.loads(line)
            assert item["id"][0]["key"] == "claimPromptPay_Key"
            assert item["row"] == item["id"][0]["value"] - FIRST + 1
            yield item["id"][0]["value"], item["status"], item["body"]


def check_every_row(rows: Iterator[Row]) -> int:
    """Check each row against the batch, one at a time; returns how many there were."""
    count = 0
    for index, (key, status, body) in enumerate(rows):
        assert key == FIRST + index
        if is_bad(index):
            assert (status, body) == (
                400,
                "prompt_Pay_Duration_Type: Input should be 'D', 'M' or 'Y'",
            )
        else:
            assert (status, body) == (201, "Created")
        count += 1
    return count


@pytest.mark.parametrize(("accept", "parse"), [(CSV, csv_rows), (NDJSON, ndjson_rows)])
def test_a_100k_row_result_streams_in_order_with_bounded_server_memory(
    api: ApiProcess, big_job: str, accept: str, parse: Any
) -> None:
    reset_peak_memory(api)
    baseline_kib = api.memory_kib("VmHWM")
    url = f"{api.base_url}/jobs/{big_job}/results"
    with httpx.stream("GET", url, headers=headers(Accept=accept), timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(accept)
        assert check_every_row(parse(response)) == ROWS
    growth_kib = api.memory_kib("VmHWM") - baseline_kib
    assert growth_kib < GROWTH_LIMIT_KIB, f"server peak memory grew by {growth_kib} KiB"


def test_the_status_filter_keeps_only_the_chosen_rows_in_every_format(
    client: TestClient, big_job: str
) -> None:
    url = f"/jobs/{big_job}/results"
    bad_keys = [FIRST + i for i in range(ROWS) if is_bad(i)]

    failed_csv = client.get(url, params={"status": "failed"}, headers=headers(Accept=CSV))
    assert failed_csv.status_code == 200
    lines = list(csv.reader(failed_csv.text.splitlines()))
    assert lines[0] == ["row", "id", "status", "body"]
    assert [int(line[1]) for line in lines[1:]] == bad_keys
    assert [int(line[0]) for line in lines[1:]] == [key - FIRST + 1 for key in bad_keys]
    assert {line[2] for line in lines[1:]} == {"400"}

    page = client.get(
        url, params={"status": "4xx", "page": 2, "pageSize": 30}, headers=headers(Accept=NDJSON)
    )
    assert page.status_code == 200
    assert json.loads(page.headers["x-pagination"]) == {
        "TotalCount": 100,
        "TotalPages": 4,
        "CurrentPage": 2,
        "PageSize": 30,
    }
    assert [orjson.loads(line)["id"][0]["value"] for line in page.text.splitlines()] == bad_keys[
        30:60
    ]

    succeeded = client.get(
        url, params={"status": "succeeded", "page": 1, "pageSize": 5}, headers=headers()
    )
    assert succeeded.status_code == 207
    assert json.loads(succeeded.headers["x-pagination"])["TotalCount"] == ROWS - 100
    assert keys_of(succeeded.json()["data"]) == [FIRST + i for i in range(5)]
    assert statuses(succeeded.json()["data"]) == [201] * 5

    refused = client.get(url, params={"status": "sometimes"}, headers=headers())
    assert refused.status_code == 400
    assert refused.json()["error"]["status"] == 400
