"""`claimpay submit | status | results | jobs | cancel | retry`: the API for people.

Exit codes: 0 success; 1 the API refused or could not be reached, or the job was
cancelled; 2 bad usage or a malformed input file (nothing was sent); 3 (`--strict`) the
job completed but some rows failed; 4 (`retry --strict`) there was nothing to retry.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.live import Live

from claimpay.entities import ENTITIES
from cli.client import display, progress, state
from cli.client.errors import ClientError, InputError, UsageError
from cli.client.export import results
from cli.client.http import DEFAULT_URL, ApiClient
from cli.client.options import (
    EXIT_INTERRUPTED,
    EXIT_NOTHING_RETRIED,
    EXIT_ROWS_FAILED,
    PANEL,
    ApiKey,
    JobDatabase,
    JobId,
    Token,
    Url,
    credentials,
    known_entity,
    reported,
)
from cli.client.readers import BatchFile, InputFormat, detect_format
from cli.client.results import ResultsSummary, ndjson_results, summarize

JOB_STATES = ("queued", "running", "cancelling", "completed", "cancelled")


def register_client_commands(app: typer.Typer) -> None:
    """Add the client commands to the `claimpay` command line."""
    for command in (submit, status, results, jobs, cancel, retry):
        app.command(rich_help_panel=PANEL)(command)


def submit(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="JSON array, NDJSON or CSV."
        ),
    ],
    database: Annotated[
        str, typer.Option("--database", "-d", help="Target database (vbasoftware-database).")
    ],
    wait: Annotated[
        bool, typer.Option(help="Follow the job with a progress bar, then summarize it.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check and rehearse every row in a rolled-back transaction: the results "
            "say what would happen (201 Would create ...); nothing is written.",
        ),
    ] = False,
    chunk_size: Annotated[
        int | None,
        typer.Option(min=1, help="Rows per chunk (sent as chunkSize; the server bounds it)."),
    ] = None,
    entity: Annotated[
        str, typer.Option(help=f"Batch entity: {', '.join(sorted(ENTITIES))}.")
    ] = "claim-prompt-pays",
    input_format: Annotated[
        InputFormat | None,
        typer.Option("--format", help="Input format (default: by suffix, else by content)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="With --wait: exit 3 when any row failed (for scripts).")
    ] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Submit a batch file, streamed; with --wait, follow the job and summarize its results.

    CSV: the header names the fields (their JSON names); an empty cell omits its field.
    Malformed CSV or NDJSON lines stop everything before anything is sent (each is listed).
    The columns `row`, `line` and `error` of a fix-and-resend file (`claimpay results
    --as-input`) are ignored.
    """
    out, err = display.consoles()
    chosen = str(chunk_size) if chunk_size is not None else None
    with reported(err, database=database, chunk_size=chosen):
        client_credentials = credentials(url, api_key, token)
        batch = BatchFile(file, known_entity(entity), input_format or detect_format(file))
        size = file.stat().st_size
        try:
            with progress.file_progress(err, f"Checking {file.name}", size) as moved:
                batch.check(moved)
        except InputError as exc:
            message = str(exc)
            if not message.startswith(file.name):
                message = f"{file.name}{',' if exc.line is not None else ':'} {message}"
            raise InputError(message) from None
        remembered = state.SubmittedFile.of(file, batch.format.value, entity)
        with ApiClient(client_credentials) as client:
            with progress.file_progress(err, f"Uploading {file.name}", size) as moved:
                accepted = client.submit(entity, database, batch.body(moved), chunk_size, dry_run)
            job_id = str(accepted["jobId"])
            state.remember(job_id, remembered)
            rehearsal = " (dry run: nothing is written)" if dry_run else ""
            out.print(
                f"Job {job_id} accepted: {accepted.get('total')} rows for {database} "
                f"({accepted.get('state')}){rehearsal}",
                highlight=False,
            )
            if not wait:
                out.print(f"Follow it with: claimpay status {job_id} --watch", highlight=False)
                return
            final = _follow(client, job_id, database, err)
            _report_outcome(client, final, database, out, strict)


def status(
    job_id: JobId,
    database: JobDatabase = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", "-w", help="Refresh until the job ends (elapsed time, rows/s, chunks)."
        ),
    ] = False,
    interval_s: Annotated[
        float, typer.Option("--interval", min=0.2, help="Seconds between refreshes (--watch).")
    ] = 2.0,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Show a job's state and counts: rows applied and not processed, chunks done, elapsed
    time and rate."""
    out, err = display.consoles()
    with (
        reported(err, database=database, job=job_id),
        ApiClient(credentials(url, api_key, token)) as client,
    ):
        data = client.job(job_id, database)
        if watch and as_json:
            raise UsageError("--watch shows a live table; leave out --json")
        if watch:
            _watch(client, job_id, database, data, out, interval_s)
        elif as_json:
            sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            out.print(display.status_table(data))


def jobs(
    database: JobDatabase = None,
    job_state: Annotated[
        str | None,
        typer.Option("--state", help=f"Only jobs in this state: {', '.join(JOB_STATES)}."),
    ] = None,
    page: Annotated[int, typer.Option(min=1, help="Page number (newest jobs first).")] = 1,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=1000, help="Jobs per page.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """List the jobs of the databases your API key may use, newest first (GET /jobs)."""
    out, err = display.consoles()
    with reported(err, database=database, page=str(page), page_size=str(page_size)):
        if job_state is not None and job_state not in JOB_STATES:
            raise UsageError(f"--state {job_state}: unknown; one of: {', '.join(JOB_STATES)}")
        with ApiClient(credentials(url, api_key, token)) as client:
            listed, pagination = client.jobs(database, job_state, page, page_size)
        if as_json:
            body = {"data": listed, "pagination": pagination}
            sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
        elif not listed:
            out.print("No jobs" + (f" on page {page}" if page > 1 else "") + ".")
        else:
            out.print(display.jobs_table(listed, pagination))


def cancel(
    job_id: JobId,
    database: JobDatabase = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Cancel a job: chunks not started are skipped; applied rows keep their result."""
    out, err = display.consoles()
    with reported(err, database=database, job=job_id):
        with ApiClient(credentials(url, api_key, token)) as client:
            code, data = client.cancel(job_id, database)
        if code == 202:
            out.print(
                f"Job {job_id} is cancelling; `claimpay status {job_id} --watch` shows when it "
                "ends.",
                highlight=False,
            )
        else:
            out.print(f"Job {job_id} is {data.get('state', 'cancelled')}.", highlight=False)
        out.print(display.status_table(data))


def retry(
    job_id: JobId,
    statuses: Annotated[
        str | None,
        typer.Option(
            "--statuses",
            help="Retry the rows whose last status is one of these HTTP codes or classes, "
            "e.g. 409,503 (409: rows a cancel left unprocessed) (default: 5xx).",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the retried job, then summarize it.")] = False,
    strict: Annotated[
        bool,
        typer.Option(help="Exit 4 when no row had such a status (nothing was retried)."),
    ] = False,
    database: JobDatabase = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Re-run the rows of a finished job that failed for a transient reason (5xx), or with
    the chosen statuses (POST /jobs/{id}/retry)."""
    out, err = display.consoles()
    with (
        reported(err, database=database, job=job_id, statuses=statuses),
        ApiClient(credentials(url, api_key, token)) as client,
    ):
        code, data = client.retry(job_id, database, statuses)
        chosen = statuses or "5xx"
        retried = int(data.get("retriedRows") or 0)
        if code != 202 or not retried:
            out.print(
                f"Job {job_id}: nothing to retry: no row's last status is {chosen}.",
                highlight=False,
            )
            out.print(display.status_table(data))
            if strict:
                raise typer.Exit(EXIT_NOTHING_RETRIED)
            return
        out.print(
            f"Job {job_id}: {retried} rows with status {chosen} queued again "
            f"({data.get('state', '?')}).",
            highlight=False,
        )
        if not wait:
            out.print(display.status_table(data))
            return
        final = _follow(client, job_id, database, err)
        _report_outcome(client, final, database, out, strict=False)


def _watch(
    client: ApiClient,
    job_id: str,
    database: str | None,
    data: dict[str, Any],
    out: Console,
    interval_s: float,
) -> None:
    try:
        with Live(display.status_table(data), console=out, auto_refresh=False) as live:
            while data.get("state") not in progress.TERMINAL_STATES:
                time.sleep(interval_s)
                data = client.job(job_id, database)
                live.update(display.status_table(data), refresh=True)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _follow(client: ApiClient, job_id: str, database: str | None, err: Console) -> dict[str, Any]:
    try:
        return progress.follow_job(client, job_id, database, err)
    except KeyboardInterrupt:
        err.print(
            f"Stopped following job {job_id}; it goes on. "
            f"`claimpay status {job_id} --watch` follows it, `claimpay cancel {job_id}` stops "
            "it.",
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _report_outcome(
    client: ApiClient, final: dict[str, Any], database: str | None, out: Console, strict: bool
) -> None:
    out.print(display.summary_table(final))
    summary = ResultsSummary()
    if final.get("failed") or final.get("notProcessed"):
        with client.results(str(final["jobId"]), database, status="failed") as stream:
            summary = summarize(ndjson_results(stream.chunks))
        out.print(display.errors_table(summary))
        job_id = final["jobId"]
        out.print(
            f"Fix and resend them: claimpay results {job_id} --as-input -o fix.csv",
            highlight=False,
        )
    if final.get("state") != "completed":
        raise ClientError(f"job {final['jobId']} was {final.get('state')}")
    if strict and final.get("failed"):
        raise typer.Exit(EXIT_ROWS_FAILED)
