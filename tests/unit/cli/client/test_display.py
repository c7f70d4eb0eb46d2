"""What people read: a job's status in words that never contradict each other, and API
errors told as the command-line options that caused them."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from cli.client.display import (
    duration_text,
    error_message,
    jobs_table,
    status_lines,
    summary_table,
)
from cli.client.errors import ApiProblem

NOW = datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC)


def cancelled() -> dict[str, object]:
    return {
        "jobId": "j" * 32,
        "state": "cancelled",
        "database": "demo",
        "total": 61_000,
        "processed": 61_000,
        "created": 49_000,
        "updated": 500,
        "failed": 500,
        "notProcessed": 11_000,
        "submittedAt": "2026-01-02T03:02:00.000Z",
        "startedAt": "2026-01-02T03:03:00.000Z",
        "finishedAt": "2026-01-02T03:04:40.000Z",
        "dryRun": False,
        "retries": 0,
        "chunks": 61,
        "chunksDone": 61,
    }


def test_a_cancelled_job_shows_applied_rows_apart_from_unprocessed_ones() -> None:
    lines = dict(status_lines(cancelled(), NOW))
    assert lines["Done"] == "50000 of 61000 (81%)"
    assert lines["Not processed"] == "11000 (the job was cancelled before they ran)"
    assert "Processed" not in lines
    assert lines["Chunks"] == "61 of 61 done"
    assert lines["Elapsed"] == "1m 40s"
    assert lines["Rate"] == "500 rows/s"
    assert (lines["Started"], lines["Finished"]) == (
        "2026-01-02T03:03:00.000Z",
        "2026-01-02T03:04:40.000Z",
    )
    assert not {"dryRun", "retries", "chunksDone", "notProcessed"} & set(lines)


def test_a_running_job_counts_elapsed_time_until_now() -> None:
    running = {**cancelled(), "state": "running", "finishedAt": None, "notProcessed": 0}
    running |= {"processed": 30_000, "chunksDone": 30, "dryRun": True, "retries": 2}
    lines = dict(status_lines(running, NOW))
    assert lines["Elapsed"] == "2m 00s"
    assert lines["Rate"] == "250 rows/s"
    assert lines["Chunks"] == "30 of 61 done"
    assert lines["Dry run"] == "yes: nothing is written"
    assert lines["Retries"] == "2"
    assert "Not processed" not in lines


def test_durations_read_naturally() -> None:
    assert [duration_text(s) for s in (4.25, 187, 7500)] == ["4.2s", "3m 07s", "2h 05m"]


def problem(slug: str, detail: str, status: int = 400) -> ApiProblem:
    return ApiProblem(status, "Bad Request", detail, type_=f"urn:claimpay:problem:{slug}")


def test_api_problems_name_the_options_and_values_given() -> None:
    unknown = problem("unknown-database", "The vbasoftware-database header names a database ...")
    message = error_message(unknown, {"database": "demo2"})
    first, second = message.splitlines()
    assert first == "Error 400 Bad Request: --database demo2: the API has no database of that name"
    assert "the API said: The vbasoftware-database header" in second

    forbidden = problem("database-forbidden", "This API key may not use that database.", 403)
    assert "--database acme: the API key (--api-key) may not use" in error_message(
        forbidden, {"database": "acme"}
    )
    missing = problem("job-not-found", "No such job.", 404)
    assert "no job abc in --database demo" in error_message(
        missing, {"job": "abc", "database": "demo"}
    )
    statuses = problem("invalid-status-filter", "status: use failed, ...")
    assert "--statuses 4O9: use HTTP codes" in error_message(statuses, {"statuses": "4O9"})
    assert "--status 4O9: use HTTP codes" in error_message(statuses, {"status": "4O9"})
    key = problem("invalid-api-key", "The x-api-key header is not valid.", 401)
    assert "--api-key (or CLAIMPAY_API_KEY)" in error_message(key, {})


def test_bad_query_parameters_are_told_as_their_options() -> None:
    bad = problem("invalid-request", "chunkSize: Input should be less than or equal to 50000")
    assert error_message(bad, {"chunk_size": "90000"}).splitlines()[0] == (
        "Error 400 Bad Request: --chunk-size 90000: Input should be less than or equal to 50000"
    )
    body = problem("invalid-request", "body.0: Input should be a valid dictionary")
    assert "--" not in error_message(body, {"chunk_size": None})


def test_a_problem_no_option_caused_keeps_the_apis_words() -> None:
    other = problem("too-many-jobs", "Too many unfinished jobs.", 429)
    assert error_message(other, {"database": "demo"}) == (
        "Error 429 Bad Request: Too many unfinished jobs."
    )


def rendered(table: object, width: int = 120) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_the_jobs_table_shows_whole_job_ids_and_the_page() -> None:
    text = rendered(
        jobs_table([cancelled()], {"CurrentPage": 1, "TotalPages": 3, "TotalCount": 41})
    )
    assert "j" * 32 in text
    assert "cancelled" in text
    assert "page 1 of 3 (41 jobs)" in text
    assert "1m 40s" in text


def test_a_dry_runs_summary_says_nothing_was_written() -> None:
    text = rendered(summary_table({**cancelled(), "dryRun": True}))
    assert "Job cancelled (dry run: nothing was written)" in text
    assert "not processed" in text
