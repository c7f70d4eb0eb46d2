"""The client commands as people run them: `claimpay submit | status | results | cancel |
retry` as subprocesses, against a real `claimpay api` process, Redis, PostgreSQL and a worker."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from sqlalchemy import Engine, text

from cli.devstack import free_port
from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET, make_row, make_rows
from tests.integration.conftest import WorkerProcess, start_worker, stop_worker
from tests.integration.namespaces import purge_namespace

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

HEADER = [
    "claimPromptPay_Key",
    "group_ID",
    "division_ID",
    "plan_ID",
    "prompt_Pay_Duration",
    "prompt_Pay_Duration_Type",
    "tax_ID",
    "entry_Date",
]
JOB_ACCEPTED = re.compile(r"Job ([0-9a-f]{32}) accepted")


@dataclass(frozen=True)
class ApiServer:
    url: str
    env: dict[str, str]
    """The deployment's environment (the server's, not the client's)."""


@contextlib.contextmanager
def api_process(env: dict[str, str], log_path: Path) -> Iterator[ApiServer]:
    """`claimpay api` on a free port, as an operator starts it; stopped afterwards."""
    port = free_port()
    argv = [sys.executable, "-m", "cli", "api", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _live(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"claimpay api did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield ApiServer(url, env)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _live(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/live", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def api(
    stack_env: dict[str, str],
    worker_process: WorkerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    """The API of the test deployment, whose chunks the worker process applies."""
    with api_process(stack_env, tmp_path_factory.mktemp("api") / "api.log") as server:
        yield server


@pytest.fixture(scope="module")
def idle_api(
    stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An API whose queue no worker consumes (its own key prefix): its jobs stay queued."""
    namespace = stack_env["CLAIMPAY_KEY_PREFIX"] + "idle"
    env = {**stack_env, "CLAIMPAY_KEY_PREFIX": namespace, "CLAIMPAY_QUEUE": namespace}
    with api_process(env, tmp_path_factory.mktemp("idle-api") / "api.log") as server:
        yield server
    purge_namespace(env)


def claimpay(
    server: ApiServer, *args: str, api_key: str = API_KEY, config_home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m cli ARGS` with the client's environment only (URL and credentials);
    `config_home` is where the client keeps its state (XDG_CONFIG_HOME)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CLAIMPAY_")}
    env |= {
        "CLAIMPAY_URL": server.url,
        "CLAIMPAY_API_KEY": api_key,
        "CLAIMPAY_TOKEN": mint_token(JWT_SECRET, "cli-user", 600),
        "COLUMNS": "200",
    }
    # The client remembers submitted files there: never in the home of whoever runs the tests.
    env["XDG_CONFIG_HOME"] = str(config_home or Path(tempfile.gettempdir()) / "claimpay-cli-test")
    argv = [sys.executable, "-m", "cli", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)


def accepted_job(result: subprocess.CompletedProcess[str]) -> str:
    match = JOB_ACCEPTED.search(result.stdout)
    assert match, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    return match.group(1)


def summary_counts(stdout: str) -> dict[str, int]:
    """The summary table's rows, e.g. {"created": 3, "updated": 0, "failed": 1, ...}."""
    counts = re.findall(r"│\s*(created|updated|failed|not processed|total)\s*│\s*(\d+)\s*│", stdout)
    return {name: int(value) for name, value in counts}


def stored(engine: Engine, keys: list[int]) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM claim_prompt_pay WHERE claim_prompt_pay_key = ANY(:keys)"),
            {"keys": keys},
        ).mappings()
        return {row["claim_prompt_pay_key"]: dict(row) for row in rows}


def job_count(server: ApiServer) -> int:
    redis = Redis.from_url(server.env["CLAIMPAY_REDIS_URL"])
    prefix = server.env["CLAIMPAY_KEY_PREFIX"]
    pattern = re.compile(rf"{re.escape(prefix)}:job:[0-9a-f]{{32}}")
    count = sum(
        1 for key in redis.scan_iter(match=f"{prefix}:job:*") if pattern.fullmatch(key.decode())
    )
    redis.close()
    return count


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, HEADER)
        writer.writeheader()
        writer.writerows(rows)


def test_submit_json_array_waits_and_summarizes_created_and_failed_rows(
    api: ApiServer, pg_engine: Engine, tmp_path: Path
) -> None:
    rows: list[dict[str, Any]] = make_rows(40, first_key=70_001)
    rows += [make_row(70_041, prompt_Pay_Duration_Type="W"), make_row(70_042, tax_ID="9" * 40)]
    rows.append(make_row(70_043, prompt_Pay_Duration_Type="W"))
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(rows, indent=1))

    result = claimpay(api, "submit", str(path), "--database", "acme", "--wait", "--strict")

    assert result.returncode == 3, result.stderr  # completed, some rows failed, --strict
    accepted_job(result)
    assert summary_counts(result.stdout) == {"created": 40, "updated": 0, "failed": 3, "total": 43}
    assert "Top errors" in result.stdout
    assert re.search(
        r"│\s*2\s*│\s*400\s*│\s*prompt_Pay_Duration_Type: Input should be", result.stdout
    )
    assert "tax_ID: String should have at most 32 characters" in result.stdout
    assert sorted(stored(pg_engine, list(range(70_001, 70_044)))) == list(range(70_001, 70_041))


def test_submit_ndjson_with_a_chunk_size_applies_every_row(
    api: ApiServer, pg_engine: Engine, tmp_path: Path
) -> None:
    rows = make_rows(30, first_key=71_001)
    path = tmp_path / "batch.ndjson"
    path.write_text("".join(json.dumps(row) + "\n\n" for row in rows))

    result = claimpay(api, "submit", str(path), "-d", "acme", "--wait", "--chunk-size", "7")

    assert result.returncode == 0, result.stderr
    assert summary_counts(result.stdout) == {"created": 30, "updated": 0, "failed": 0, "total": 30}
    table = stored(pg_engine, [row["claimPromptPay_Key"] for row in rows])
    assert [table[row["claimPromptPay_Key"]]["plan_id"] for row in rows] == [
        row["plan_ID"] for row in rows
    ]
    assert {row["entry_user"] for row in table.values()} == {"cli-user"}


def test_submit_csv_with_typed_cells_then_read_the_results_as_files(
    api: ApiServer, pg_engine: Engine, tmp_path: Path
) -> None:
    rows = [
        {**make_row(72_001), "entry_Date": "2024-03-01T08:00:00Z"},
        {**make_row(72_002, group_ID="", division_ID="", tax_ID=""), "entry_Date": ""},
        {**make_row(72_003, prompt_Pay_Duration_Type="W"), "entry_Date": ""},
        {**make_row(72_001, prompt_Pay_Duration=45), "entry_Date": ""},
    ]
    path = tmp_path / "batch.csv"
    write_csv(path, rows)

    submitted = claimpay(api, "submit", str(path), "--database", "acme", "--wait")

    assert submitted.returncode == 0, submitted.stderr  # completed (one row failed)
    job_id = accepted_job(submitted)
    assert summary_counts(submitted.stdout) == {"created": 2, "updated": 1, "failed": 1, "total": 4}
    table = stored(pg_engine, [72_001, 72_002, 72_003])
    assert sorted(table) == [72_001, 72_002]
    assert table[72_001]["prompt_pay_duration"] == 45
    assert str(table[72_001]["entry_date"]).startswith("2024-03-01 08:00:00")
    assert (table[72_002]["group_id"], table[72_002]["tax_id"]) == (None, None)

    out_csv = tmp_path / "out.csv"
    written = claimpay(api, "results", job_id, "-o", str(out_csv))
    assert written.returncode == 0, written.stderr
    with out_csv.open(newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["row", "id", "status", "body"]
    assert [line[:3] for line in lines[1:]] == [
        ["1", "72001", "201"],
        ["2", "72002", "201"],
        ["3", "72003", "400"],
        ["4", "72001", "200"],
    ]
    assert lines[3][3].startswith("prompt_Pay_Duration_Type: Input should be")

    out_json = tmp_path / "failed.json"
    failed = claimpay(api, "results", job_id, "--failed", "-o", str(out_json))
    assert failed.returncode == 0, failed.stderr
    envelope = json.loads(out_json.read_text())
    assert envelope["error"] is None
    assert envelope["debug"] == {"activityID": job_id}
    assert [(item["id"], item["status"]) for item in envelope["data"]] == [
        ([{"key": "claimPromptPay_Key", "value": 72_003}], 400)
    ]

    failed_csv = claimpay(api, "results", job_id, "--failed", "--format", "csv")
    assert failed_csv.stdout.splitlines()[1].startswith("3,72003,400,")

    status = claimpay(api, "status", job_id)
    assert status.returncode == 0, status.stderr
    assert re.search(r"State\s+completed", status.stdout)
    assert re.search(r"Updated\s+1", status.stdout)
    assert re.search(r"Done\s+4 of 4 \(100%\)", status.stdout)
    assert re.search(r"Chunks\s+1 of 1 done", status.stdout)


def test_a_malformed_csv_line_is_named_and_nothing_is_submitted(
    api: ApiServer, pg_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "batch.csv"
    write_csv(path, [make_row(73_001), make_row(73_002), make_row(73_003)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("73004,GRP1,DIV1,PPO,thirty,D,123456789,\n")
    jobs_before = job_count(api)

    result = claimpay(api, "submit", str(path), "--database", "acme", "--wait")

    assert result.returncode == 2
    assert "line 5: column prompt_Pay_Duration: 'thirty' is not an integer" in result.stderr
    assert "Traceback" not in result.stderr
    assert job_count(api) == jobs_before
    assert stored(pg_engine, [73_001, 73_002, 73_003, 73_004]) == {}


def test_a_wrong_api_key_shows_the_problem_detail(api: ApiServer, tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps([make_row(74_001)]))

    result = claimpay(api, "submit", str(path), "-d", "acme", api_key="not-a-key")

    assert result.returncode == 1
    assert "Error 401 Unauthorized" in result.stderr
    assert "x-api-key" in result.stderr  # the problem's detail
    assert "Traceback" not in result.stderr


def test_an_unreachable_api_is_one_line_with_a_hint(tmp_path: Path) -> None:
    nowhere = ApiServer(f"http://127.0.0.1:{free_port()}", {})
    result = claimpay(nowhere, "status", "0" * 32)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "connection refused" in result.stderr
    assert "claimpay api" in result.stderr


def test_cancel_a_queued_job_then_a_completed_one(
    idle_api: ApiServer, api: ApiServer, tmp_path: Path
) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(make_rows(5, first_key=75_001)))
    queued = accepted_job(claimpay(idle_api, "submit", str(path), "-d", "demo"))

    pending = claimpay(idle_api, "results", queued)
    assert pending.returncode == 1
    assert f"job {queued} is queued (0/5 rows processed)" in pending.stderr
    assert "--wait" in pending.stderr

    cancelling = claimpay(idle_api, "cancel", queued)
    assert cancelling.returncode == 0, cancelling.stderr
    assert f"Job {queued} is cancelling" in cancelling.stdout

    done = claimpay(api, "submit", str(path), "-d", "demo", "--wait")
    assert done.returncode == 0, done.stderr
    refused = claimpay(api, "cancel", accepted_job(done))
    assert refused.returncode == 1
    assert "Error 409 Conflict: The job has already completed." in refused.stderr


def test_retry_reports_the_api_answer(api: ApiServer) -> None:
    result = claimpay(api, "retry", "f" * 32)
    assert result.returncode == 1
    assert "Error 404" in result.stderr
    assert "Traceback" not in result.stderr


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_failed_rows_are_exported_as_input_fixed_and_submitted_again(
    api: ApiServer, pg_engine: Engine, tmp_path: Path
) -> None:
    good = [make_row(key) for key in (76_001, 76_003, 76_006)]
    no_key = {**make_row(None, group_ID='G, quoted "2"'), "claimPromptPay_Key": ""}
    too_long = make_row(76_004, tax_ID="9" * 40)
    bad_type = make_row(76_005, prompt_Pay_Duration_Type="W")
    path = tmp_path / "batch.csv"
    write_csv(path, [good[0], no_key, good[1], too_long, bad_type, good[2]])
    with path.open("a", encoding="utf-8") as handle:  # a blank line: lines and rows differ
        handle.write("\n")
    home = tmp_path / "config"

    submitted = claimpay(api, "submit", str(path), "-d", "acme", "--wait", config_home=home)
    assert submitted.returncode == 0, submitted.stderr
    job_id = accepted_job(submitted)
    assert summary_counts(submitted.stdout)["failed"] == 3
    assert f"claimpay results {job_id} --as-input -o fix.csv" in submitted.stdout

    failed_csv = tmp_path / "failed.csv"
    listed = claimpay(
        api, "results", job_id, "--failed", "--line-numbers", "-o", str(failed_csv),
        config_home=home,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [(r["row"], r["line"], r["id"], r["status"]) for r in read_csv(failed_csv)] == [
        ("2", "3", "", "400"),
        ("4", "5", "76004", "400"),
        ("5", "6", "76005", "400"),
    ]

    fix = tmp_path / "fix.csv"
    exported = claimpay(
        api, "results", job_id, "--failed", "--as-input", "-o", str(fix), "-d", "acme"
    )
    assert exported.returncode == 0, exported.stderr
    assert "Wrote 3 rows" in exported.stderr
    assert f"claimpay submit {fix} --database acme" in exported.stderr
    rows = read_csv(fix)
    assert list(rows[0])[:3] == ["row", "error", "claimPromptPay_Key"]
    assert [row["row"] for row in rows] == ["2", "4", "5"]
    assert rows[0]["error"] == "claimPromptPay_Key: is required"
    assert rows[0]["group_ID"] == 'G, quoted "2"'
    assert rows[1]["tax_ID"] == "9" * 40
    assert rows[1]["error"].startswith("tax_ID: String should have at most 32 characters")
    assert rows[2]["prompt_Pay_Duration_Type"] == "W"
    for row in rows:  # every other value is the one sent
        sent = {2: no_key, 4: too_long, 5: bad_type}[int(row["row"])]
        for name in ("group_ID", "division_ID", "plan_ID", "prompt_Pay_Duration"):
            assert row[name] == str(sent[name])

    rows[0]["claimPromptPay_Key"] = "76002"
    rows[1]["tax_ID"] = "123456789"
    rows[2]["prompt_Pay_Duration_Type"] = "D"
    with fix.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    resent = claimpay(api, "submit", str(fix), "-d", "acme", "--wait", "--strict")
    assert resent.returncode == 0, resent.stderr
    assert summary_counts(resent.stdout) == {"created": 3, "updated": 0, "failed": 0, "total": 3}
    table = stored(pg_engine, list(range(76_001, 76_007)))
    assert sorted(table) == list(range(76_001, 76_007))
    assert table[76_002]["group_id"] == 'G, quoted "2"'
    assert table[76_005]["prompt_pay_duration_type"] == "D"


def test_a_json_fix_file_goes_back_without_its_annotations(
    api: ApiServer, pg_engine: Engine, tmp_path: Path
) -> None:
    rows = [make_row(77_001), {**make_row(77_002), "plan": "typo"}, make_row(77_003)]
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(rows, indent=2))
    job_id = accepted_job(claimpay(api, "submit", str(path), "-d", "demo", "--wait"))

    fix = tmp_path / "fix.json"
    exported = claimpay(api, "results", job_id, "--as-input", "-o", str(fix))
    assert exported.returncode == 0, exported.stderr
    [failed] = json.loads(fix.read_text())
    assert (failed["row"], failed["plan"]) == (2, "typo")
    assert "plan" in failed["error"]
    del failed["plan"]
    fix.write_text(json.dumps([failed]))

    resent = claimpay(api, "submit", str(fix), "-d", "demo", "--wait", "--strict")
    assert resent.returncode == 0, resent.stderr
    assert summary_counts(resent.stdout)["created"] == 1

    ndjson = tmp_path / "all.ndjson"
    assert claimpay(api, "results", job_id, "-o", str(ndjson)).returncode == 0
    items = [json.loads(line) for line in ndjson.read_text().splitlines()]
    assert [(item["row"], item["status"]) for item in items] == [(1, 201), (2, 400), (3, 201)]


def test_dry_run_jobs_listing_and_errors_in_the_words_of_the_command_line(
    api: ApiServer, pg_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(make_rows(3, first_key=78_001)))

    rehearsed = claimpay(api, "submit", str(path), "-d", "acme", "--dry-run", "--wait")
    assert rehearsed.returncode == 0, rehearsed.stderr
    job_id = accepted_job(rehearsed)
    assert "dry run: nothing is written" in rehearsed.stdout
    assert stored(pg_engine, [78_001, 78_002, 78_003]) == {}
    would = claimpay(api, "results", job_id, "--format", "csv", "--wait")
    assert [line.split(",")[3] for line in would.stdout.splitlines()[1:]] == ["Would create"] * 3

    listing = claimpay(api, "jobs", "-d", "acme", "--page-size", "5")
    assert listing.returncode == 0, listing.stderr
    assert job_id in listing.stdout
    assert "(dry run)" in listing.stdout
    assert re.search(r"page 1 of \d+ \(\d+ jobs\)", listing.stdout)
    as_json = json.loads(claimpay(api, "jobs", "--json", "--state", "completed").stdout)
    assert {job["state"] for job in as_json["data"]} == {"completed"}

    unknown = claimpay(api, "submit", str(path), "--database", "nowhere")
    assert unknown.returncode == 1
    assert "--database nowhere: the API has no database of that name" in unknown.stderr
    missing = claimpay(api, "status", "e" * 32, "-d", "acme")
    assert f"no job {'e' * 32} in --database acme" in missing.stderr
    statuses = claimpay(api, "retry", job_id, "--statuses", "4O9")
    assert "--statuses 4O9: use HTTP codes" in statuses.stderr


def test_a_cancelled_jobs_unprocessed_rows_are_retried_by_status(
    stack_env: dict[str, str], pg_engine: Engine, tmp_path: Path
) -> None:
    namespace = stack_env["CLAIMPAY_KEY_PREFIX"] + "cancel"
    env = {**stack_env, "CLAIMPAY_KEY_PREFIX": namespace, "CLAIMPAY_QUEUE": namespace}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(make_rows(6, first_key=79_001)))
    try:
        with api_process(env, tmp_path / "api.log") as server:
            job_id = accepted_job(claimpay(server, "submit", str(path), "-d", "acme"))
            assert claimpay(server, "cancel", job_id).returncode == 0
            worker = start_worker(env, tmp_path / "worker.log")  # it skips the chunks
            try:
                watched = claimpay(server, "status", job_id, "--watch", "--interval", "0.2")
                assert watched.returncode == 0, watched.stderr
                assert re.search(r"State\s+cancelled", watched.stdout)
                assert re.search(r"Done\s+0 of 6", watched.stdout)
                assert re.search(r"Not processed\s+6 \(the job was cancelled", watched.stdout)
                assert "Processed" not in watched.stdout

                resend = tmp_path / "resend.ndjson"
                exported = claimpay(
                    server, "results", job_id, "--status", "409", "--as-input", "-o", str(resend)
                )
                assert exported.returncode == 0, exported.stderr
                lines = [json.loads(line) for line in resend.read_text().splitlines()]
                assert [line.pop("row") for line in lines] == [1, 2, 3, 4, 5, 6]
                assert {line.pop("error") for line in lines} == {"Not processed: job cancelled"}
                assert lines == json.loads(path.read_text())

                nothing = claimpay(server, "retry", job_id, "--strict")
                assert nothing.returncode == 4
                assert "nothing to retry: no row's last status is 5xx" in nothing.stdout

                resumed = claimpay(server, "retry", job_id, "--statuses", "409", "--wait")
                assert resumed.returncode == 0, resumed.stderr
                assert f"Job {job_id}: 6 rows with status 409 queued again" in resumed.stdout
                assert summary_counts(resumed.stdout)["created"] == 6
            finally:
                stop_worker(worker)
        assert sorted(stored(pg_engine, list(range(79_001, 79_007)))) == list(range(79_001, 79_007))
    finally:
        purge_namespace(env)


def test_version_is_printed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert re.fullmatch(r"claimpay \S+\n", result.stdout)
