"""`claimpay results`: a job's results to stdout or a file, or its failed rows as a file to
fix and submit again (`--as-input`)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from claimpay.entities import ENTITIES
from cli.client import display, state
from cli.client.errors import ClientError, UsageError
from cli.client.fixfile import FixRows, write_fix_csv, write_fix_json, write_fix_ndjson
from cli.client.http import DEFAULT_URL, ApiClient
from cli.client.lines import row_lines, with_lines
from cli.client.options import (
    ApiKey,
    JobDatabase,
    JobId,
    Token,
    Url,
    credentials,
    destination,
    known_entity,
    reported,
)
from cli.client.progress import follow_job
from cli.client.readers import InputFormat, detect_format
from cli.client.results import (
    ResultItem,
    ndjson_results,
    write_csv,
    write_envelope,
    write_ndjson,
)


class ResultsFormat(StrEnum):
    """File forms of the results."""

    JSON = "json"
    CSV = "csv"
    NDJSON = "ndjson"


SUFFIXES = {
    ".csv": ResultsFormat.CSV,
    ".ndjson": ResultsFormat.NDJSON,
    ".jsonl": ResultsFormat.NDJSON,
    ".json": ResultsFormat.JSON,
}


def results(
    job_id: JobId,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only rows whose status is not 2xx.")
    ] = False,
    status_filter: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only rows with these statuses: failed, succeeded, or HTTP codes and classes "
            "such as 409,5xx.",
        ),
    ] = None,
    as_input: Annotated[
        bool,
        typer.Option(
            "--as-input",
            help="The failed rows (or those of --status) as they were sent, `row` and `error` "
            "beside each, in the format of -o: fix them, then `claimpay submit` the file.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Write to this file (.csv, .ndjson, .json)."
        ),
    ] = None,
    output_format: Annotated[
        ResultsFormat | None,
        typer.Option(
            "--format",
            help="csv (row,id,status,body), ndjson (one result a line, with row) or json "
            "(the 207 envelope) (default: by the output's suffix; json on stdout).",
        ),
    ] = None,
    line_numbers: Annotated[
        bool,
        typer.Option(
            "--line-numbers",
            help="Add `line`, the row's line in the submitted file (the file `claimpay "
            "submit` remembered for this job, or --input-file).",
        ),
    ] = False,
    input_file: Annotated[
        Path | None,
        typer.Option(
            "--input-file",
            exists=True,
            dir_okay=False,
            help="The file the job was submitted from, for --line-numbers (implies it).",
        ),
    ] = None,
    entity: Annotated[
        str | None,
        typer.Option(help="The job's entity, for --as-input CSV columns (default: remembered)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for an unfinished job, with a progress bar.")
    ] = False,
    database: JobDatabase = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    token: Token = None,
) -> None:
    """Fetch a finished job's results (streamed) to stdout or a file.

    Every CSV and NDJSON result carries `row`, the row's 1-based position in the job.
    """
    _, err = display.consoles()
    with reported(err, database=database, job=job_id, status=status_filter):
        if failed and status_filter:
            raise UsageError("--failed is --status failed: give one of them")
        form = results_format(output, output_format)
        lines_from = _lines_source(job_id, input_file) if line_numbers or input_file else None
        if lines_from is not None and form is ResultsFormat.JSON and not as_input:
            raise UsageError(
                "--line-numbers adds a `line` column, which the JSON envelope has not: "
                "use -o FILE.csv or -o FILE.ndjson (or --format csv|ndjson)"
            )
        spec_name = _entity(job_id, entity) if as_input and form is ResultsFormat.CSV else None
        with ApiClient(credentials(url, api_key, token)) as client:
            if wait:
                follow_job(client, job_id, database, err)
            wanted = status_filter or ("failed" if failed or as_input else None)
            with client.results(job_id, database, status=wanted, include_input=as_input) as got:
                if got.pending is not None:
                    raise ClientError(_pending(job_id, got.pending))
                items: Iterator[ResultItem] = ndjson_results(got.chunks)
                if lines_from is not None:
                    items = with_lines(items, row_lines(*lines_from))
                with destination(output) as target:
                    if as_input:
                        fix = FixRows(items, with_lines=lines_from is not None)
                        rows = _write_fix(fix, form, target, spec_name)
                    else:
                        rows = _write(items, form, target, job_id, lines_from is not None)
        if output is not None:
            err.print(f"Wrote {rows} rows to {output}", highlight=False)
        if as_input:
            _fix_hints(err, fix, output, rows, database)


def results_format(output: Path | None, chosen: ResultsFormat | None) -> ResultsFormat:
    """`--format`, else the output's suffix (an unknown one is an error), else JSON."""
    if chosen is not None:
        return chosen
    if output is None:
        return ResultsFormat.JSON
    found = SUFFIXES.get(output.suffix.lower())
    if found is None:
        raise UsageError(
            f"--output {output}: unknown extension {output.suffix or '(none)'!r}; "
            f"use {', '.join(SUFFIXES)} (or name the format with --format csv|ndjson|json)"
        )
    return found


def _lines_source(job_id: str, input_file: Path | None) -> tuple[Path, InputFormat]:
    if input_file is not None:
        return input_file, detect_format(input_file)
    remembered = state.recall(job_id)
    if remembered is None:
        raise UsageError(
            f"--line-numbers: no file remembered for job {job_id} on this machine "
            f"(see {state.state_path()}); name it with --input-file FILE"
        )
    if remembered.changed():
        raise UsageError(
            f"--line-numbers: {remembered.path} changed (or is gone) since job {job_id} was "
            "submitted, so its line numbers would be wrong; name the file with --input-file"
        )
    return Path(remembered.path), InputFormat(remembered.format)


def _entity(job_id: str, entity: str | None) -> str:
    if entity is None:
        remembered = state.recall(job_id)
        entity = remembered.entity if remembered else "claim-prompt-pays"
    return known_entity(entity).name


def _pending(job_id: str, status: dict[str, Any]) -> str:
    return (
        f"job {job_id} is {status.get('state')} ({status.get('processed')}/"
        f"{status.get('total')} rows processed); its results come when it ends "
        "(add --wait to wait for them)"
    )


def _write(
    items: Iterator[ResultItem], form: ResultsFormat, target: IO[bytes], job_id: str, lines: bool
) -> int:
    if form is ResultsFormat.CSV:
        return _as_text(target, lambda text: write_csv(items, text, with_lines=lines))
    if form is ResultsFormat.NDJSON:
        return write_ndjson(items, target)
    return write_envelope(items, target, job_id)


def _write_fix(fix: FixRows, form: ResultsFormat, target: IO[bytes], entity: str | None) -> int:
    if form is ResultsFormat.CSV:
        spec = ENTITIES[entity or "claim-prompt-pays"]
        return _as_text(target, lambda text: write_fix_csv(fix, text, spec))
    if form is ResultsFormat.NDJSON:
        return write_fix_ndjson(fix, target)
    return write_fix_json(fix, target)


def _as_text(target: IO[bytes], write: Callable[[IO[str]], int]) -> int:
    text = io.TextIOWrapper(target, encoding="utf-8", newline="")
    try:
        return write(text)
    finally:
        text.flush()
        text.detach()  # the caller closes `target`, not this wrapper


def _fix_hints(
    err: Any, fix: FixRows, output: Path | None, rows: int, database: str | None
) -> None:
    if fix.not_kept:
        err.print(
            f"{fix.not_kept} of them could not be read back as sent (no longer kept); "
            "their `error` says so",
            style="yellow",
        )
    if output is not None and rows:
        where = f" --database {database}" if database else " --database DB"
        err.print(
            f"Correct them in {output}, then: claimpay submit {output}{where} "
            "(the row, line and error columns are ignored)",
            highlight=False,
        )
