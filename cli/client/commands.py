"""`claimpay submit | status | results | cancel | retry`: the API for people.

Exit codes: 0 success; 1 the API refused or could not be reached, or the job was
cancelled; 2 bad usage or a malformed input file (nothing was sent); 3 the job completed
but some rows failed.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.console import Console

from claimpay.entities import ENTITIES
from cli.client import display, progress
from cli.client.errors import ClientError, InputError, UsageError
from cli.client.http import DEFAULT_URL, ApiClient, Credentials
from cli.client.readers import BatchFile, InputFormat, detect_format
from cli.client.results import (
    EnvelopeReader,
    ResultItem,
    ResultsSummary,
    only_failed,
    summarize,
    write_csv,
    write_envelope,
)

PANEL = "Client (talks to a running API)"
EXIT_ROWS_FAILED = 3
EXIT_INTERRUPTED = 130

Url = Annotated[
    str,
    typer.Option("--url", envvar="CLAIMPAY_URL", help="Base URL of the API.", show_envvar=True),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="CLAIMPAY_API_KEY", help="API key (x-api-key).", show_default=False
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="CLAIMPAY_TOKEN",
        help="Bearer token (JWT); `claimpay token --user U` mints one.",
        show_default=False,
    ),
]
JobId = Annotated[str, typer.Argument(help="The job ID (jobId of the submit answer).")]
JobDatabase = Annotated[
    str | None,
    typer.Option("--database", "-d", help="The job's database (sent as vbasoftware-database)."),
]


class ResultsFormat(StrEnum):
    """File forms of the results."""

    JSON = "json"
    CSV = "csv"


def register_client_commands(app: typer.Typer) -> None:
    """Add the client commands to the `claimpay` command line."""
    for command in (submit, status, results, cancel, retry):
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
    A malformed CSV or NDJSON line stops everything before anything is sent.
    """
    out, err = display.consoles()
    with _reported(err):
        credentials = _credentials(url, api_key, token)
        if entity not in ENTITIES:
            raise UsageError(f"unknown entity {entity!r}; one of: {', '.join(sorted(ENTITIES))}")
        batch = BatchFile(file, ENTITIES[entity], input_format or detect_format(file))
        size = file.stat().st_size
        try:
            with progress.file_progress(err, f"Checking {file.name}", size) as moved:
                batch.check(moved)
        except InputError as exc:
            raise InputError(f"{file.name}, {exc}") from None
        with ApiClient(credentials) as client:
            with progress.file_progress(err, f"Uploading {file.name}", size) as moved:
                accepted = client.submit(entity, database, batch.body(moved), chunk_size)
            job_id = str(accepted["jobId"])
            out.print(
                f"Job {job_id} accepted: {accepted.get('total')} rows for {database} "
                f"({accepted.get('state')})"
            )
            if not wait:
                out.print(f"Follow it with: claimpay status {job_id}")
                return
            final = _follow(client, job_id, database, err)
            _report_outcome(client, final, database, out, strict)


def status(
    job_id: JobId,
    database: JobDatabase = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Show a job's state and counts."""
    out, err = display.consoles()
    with _reported(err), ApiClient(_credentials(url, api_key, token)) as client:
        data = client.job(job_id, database)
        if as_json:
            sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            out.print(display.status_table(data))


def results(
    job_id: JobId,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only rows whose status is not 2xx.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Write to this file (.csv or .json)."),
    ] = None,
    output_format: Annotated[
        ResultsFormat | None,
        typer.Option(
            "--format",
            help="csv (id,status,body) or json (the 207 envelope) "
            "(default: by the output's suffix, else json).",
        ),
    ] = None,
    database: JobDatabase = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Fetch a finished job's results (streamed) to stdout or a file."""
    _, err = display.consoles()
    form = output_format or _format_of(output)
    with _reported(err), ApiClient(_credentials(url, api_key, token)) as client:
        with client.results(job_id, database) as stream:
            if stream.pending is not None:
                pending = stream.pending
                raise ClientError(
                    f"job {job_id} is {pending.get('state')} ({pending.get('processed')}/"
                    f"{pending.get('total')} rows processed); its results come when it ends"
                )
            reader = EnvelopeReader(stream.chunks)
            items = only_failed(reader.items()) if failed else reader.items()
            with _destination(output) as target:
                if form is ResultsFormat.CSV:
                    rows = _write_csv(items, target)
                else:
                    rows = write_envelope(reader, items, target)
        if output is not None:
            err.print(f"Wrote {rows} rows to {output}")


def cancel(
    job_id: JobId,
    database: JobDatabase = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Cancel a job: chunks not started are skipped; applied rows keep their result."""
    out, err = display.consoles()
    with _reported(err), ApiClient(_credentials(url, api_key, token)) as client:
        code, data = client.cancel(job_id, database)
        if code == 202:
            out.print(f"Job {job_id} is cancelling; `claimpay status {job_id}` shows when it ends.")
        else:
            out.print(f"Job {job_id} is {data.get('state', 'cancelled')}.")
        out.print(display.status_table(data))


def retry(
    job_id: JobId,
    database: JobDatabase = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Re-run the rows of a job that failed for a transient reason (POST /jobs/{id}/retry)."""
    out, err = display.consoles()
    with _reported(err), ApiClient(_credentials(url, api_key, token)) as client:
        _, data = client.retry(job_id, database)
        out.print(f"Job {job_id}: retry accepted ({data.get('state', '?')}).")
        out.print(display.status_table(data))


def _follow(client: ApiClient, job_id: str, database: str, err: Console) -> dict[str, Any]:
    try:
        return progress.follow_job(client, job_id, database, err)
    except KeyboardInterrupt:
        err.print(
            f"Stopped following job {job_id}; it goes on. "
            f"`claimpay status {job_id}` follows it, `claimpay cancel {job_id}` stops it."
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _report_outcome(
    client: ApiClient, final: dict[str, Any], database: str, out: Console, strict: bool
) -> None:
    out.print(display.summary_table(final))
    summary = ResultsSummary()
    if final.get("failed"):
        with client.results(str(final["jobId"]), database) as stream:
            summary = summarize(only_failed(EnvelopeReader(stream.chunks).items()))
        out.print(display.errors_table(summary))
    if final.get("state") != "completed":
        raise ClientError(f"job {final['jobId']} was {final.get('state')}")
    if strict and final.get("failed"):
        raise typer.Exit(EXIT_ROWS_FAILED)


def _credentials(url: str, api_key: str | None, token: str | None) -> Credentials:
    if not api_key:
        raise UsageError("no API key: pass --api-key or set CLAIMPAY_API_KEY")
    if not token:
        raise UsageError(
            "no bearer token: pass --token or set CLAIMPAY_TOKEN "
            "(`claimpay token --user U` mints one)"
        )
    return Credentials(url=url, api_key=api_key, token=token)


@contextlib.contextmanager
def _reported(err: Console) -> Iterator[None]:
    """Turn a `ClientError` into its message on stderr and its exit code."""
    try:
        yield
    except ClientError as exc:
        message = display.error_message(exc)
        err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _format_of(output: Path | None) -> ResultsFormat:
    if output is not None and output.suffix.lower() == ".csv":
        return ResultsFormat.CSV
    return ResultsFormat.JSON


@contextlib.contextmanager
def _destination(output: Path | None) -> Iterator[IO[bytes]]:
    """A binary stream: stdout, or a file written aside and renamed once complete."""
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = output.with_name(output.name + ".part")
    try:
        handle = partial.open("wb")
    except OSError as exc:
        raise ClientError(f"cannot write {output}: {exc.strerror}") from None
    try:
        with handle:
            yield handle
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def _write_csv(items: Iterable[ResultItem], target: IO[bytes]) -> int:
    text = io.TextIOWrapper(target, encoding="utf-8", newline="")
    try:
        return write_csv(items, text)
    finally:
        text.flush()
        text.detach()  # the caller closes `target`, not this wrapper
