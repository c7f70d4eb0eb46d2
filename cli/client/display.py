"""What the client shows people: job tables, the summary of a job, error messages (Rich).

Tables and results go to stdout; progress bars and errors go to stderr, so that the output
of `claimpay results` can be piped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from cli.client.errors import ApiProblem, ClientError
from cli.client.results import ResultsSummary

LABELS = {
    "jobId": "Job",
    "state": "State",
    "database": "Database",
    "dryRun": "Dry run",
    "total": "Rows",
    "processed": "Processed",
    "created": "Created",
    "updated": "Updated",
    "failed": "Failed",
    "notProcessed": "Not processed",
    "chunks": "Chunks",
    "chunksDone": "Chunks done",
    "retries": "Retries",
    "retriedRows": "Retried rows",
    "submittedAt": "Submitted",
    "startedAt": "Started",
    "finishedAt": "Finished",
}
"""Human names of the job status fields (any other field is shown by its own name)."""


def consoles() -> tuple[Console, Console]:
    """(stdout, stderr) consoles."""
    return Console(), Console(stderr=True)


def status_table(data: dict[str, Any], now: datetime | None = None) -> Table:
    """A job's status, one field per line, in words: rows done (created, updated,
    failed) apart from rows a cancel left unprocessed, chunks done of all, elapsed time
    and rows per second."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = dict(status_lines(data, now or datetime.now(UTC)))
    for label, value in rows.items():
        table.add_row(label, value)
    return table


def status_lines(data: dict[str, Any], now: datetime) -> list[tuple[str, str]]:
    """(label, text) lines of `status_table`."""
    lines: list[tuple[str, str]] = []
    for key in ("jobId", "state", "database"):
        if key in data:
            lines.append((LABELS[key], _text(data[key])))
    if data.get("dryRun"):
        lines.append(("Dry run", "yes: nothing is written"))
    total = _int(data.get("total"))
    skipped = _int(data.get("notProcessed"))
    applied = max(0, _int(data.get("processed")) - skipped)
    lines.append(("Rows", str(total)))
    share = f" ({applied * 100 // total}%)" if total else ""
    lines.append(("Done", f"{applied} of {total}{share}"))
    for key in ("created", "updated", "failed"):
        lines.append((f"  {LABELS[key]}", str(_int(data.get(key)))))
    if skipped:
        lines.append(("Not processed", f"{skipped} (the job was cancelled before they ran)"))
    if "chunks" in data:
        done = data.get("chunksDone")
        text = f"{_int(done)} of {_int(data['chunks'])} done" if done is not None else ""
        lines.append(("Chunks", text or str(_int(data["chunks"]))))
    if _int(data.get("retries")):
        lines.append(("Retries", str(_int(data["retries"]))))
    if "retriedRows" in data:
        lines.append(("Retried rows", str(_int(data["retriedRows"]))))
    for key in ("submittedAt", "startedAt", "finishedAt"):
        if key in data:
            lines.append((LABELS[key], _text(data[key])))
    elapsed = elapsed_s(data, now)
    if elapsed is not None:
        lines.append(("Elapsed", duration_text(elapsed)))
        if elapsed > 0 and applied:
            lines.append(("Rate", f"{applied / elapsed:,.0f} rows/s"))
    for key, value in data.items():
        if key not in LABELS:
            lines.append((key, _text(value)))
    return lines


def elapsed_s(data: dict[str, Any], now: datetime) -> float | None:
    """Seconds from the first chunk's start (else the submission) to the end (else now)."""
    start = _time(data.get("startedAt")) or _time(data.get("submittedAt"))
    if start is None:
        return None
    end = _time(data.get("finishedAt")) or now
    return max(0.0, (end - start).total_seconds())


def duration_text(seconds: float) -> str:
    """`42.0s`, `3m 07s`, `2h 05m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def jobs_table(jobs: list[dict[str, Any]], pagination: dict[str, Any]) -> Table:
    """One line per job, newest first; the caption says which page of how many."""
    table = Table(title_justify="left")
    table.add_column("Job", no_wrap=True, min_width=32)
    table.add_column("State", no_wrap=True, min_width=9)
    table.add_column("Database", no_wrap=True, min_width=8)
    for name in ("Rows", "Done", "Failed"):
        table.add_column(name, justify="right", no_wrap=True, min_width=len(name))
    table.add_column("Submitted", no_wrap=True, min_width=19)
    table.add_column("Took", justify="right", no_wrap=True)
    now = datetime.now(UTC)
    for job in jobs:
        done = max(0, _int(job.get("processed")) - _int(job.get("notProcessed")))
        took = elapsed_s(job, now)
        table.add_row(
            str(job.get("jobId")),
            str(job.get("state")) + (" (dry run)" if job.get("dryRun") else ""),
            _text(job.get("database")),
            str(_int(job.get("total"))),
            str(done),
            str(_int(job.get("failed"))),
            _short_time(job.get("submittedAt")),
            "-" if took is None else duration_text(took),
        )
    if pagination:
        table.caption = (
            f"page {pagination.get('CurrentPage')} of {pagination.get('TotalPages')} "
            f"({pagination.get('TotalCount')} jobs)"
        )
    return table


def _short_time(value: Any) -> str:
    parsed = _time(value)
    return "-" if parsed is None else parsed.strftime("%Y-%m-%d %H:%M:%S")


def summary_table(status: dict[str, Any]) -> Table:
    """Created / updated / failed (/ not processed) rows of a finished job."""
    rehearsal = " (dry run: nothing was written)" if status.get("dryRun") else ""
    title = f"Job {status.get('state', '?')}{rehearsal}"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("Outcome")
    table.add_column("Rows", justify="right")
    table.add_row("created", str(status.get("created", 0)), style="green")
    table.add_row("updated", str(status.get("updated", 0)), style="green")
    table.add_row(
        "failed", str(status.get("failed", 0)), style="red" if status.get("failed") else ""
    )
    if status.get("notProcessed"):
        table.add_row("not processed", str(status["notProcessed"]), style="yellow")
    table.add_row("total", str(status.get("total", 0)), style="bold")
    return table


def errors_table(summary: ResultsSummary, count: int = 5) -> Table:
    """The most frequent error messages, with how many rows got each."""
    table = Table(title="Top errors", title_justify="left")
    table.add_column("Rows", justify="right")
    table.add_column("Status", justify="right")
    table.add_column("Message", overflow="fold")
    for status, message, rows in summary.top_errors(count):
        table.add_row(str(rows), str(status), message)
    return table


def error_message(exc: ClientError, given: dict[str, str | None] | None = None) -> str:
    """One line (two for an API problem) saying what went wrong, in the words of the
    command line: the options and the values given (`given`: `database`, `job`,
    `statuses`), the API's own detail and activity ID below."""
    if isinstance(exc, ApiProblem):
        words = in_cli_words(exc, given or {})
        text = f"Error {exc.status} {exc.title}"
        text += f": {words or exc.detail}" if words or exc.detail else ""
        said = [f"the API said: {exc.detail}"] if words and exc.detail else []
        said += [f"activity ID {exc.activity_id}"] if exc.activity_id else []
        if said:
            text += f"\n  ({'; '.join(said)})"
        return text
    return f"Error: {exc}"


def in_cli_words(problem: ApiProblem, given: dict[str, str | None]) -> str | None:
    """The problem told as the options that caused it, or None when no option did."""
    slug = (problem.type or "").rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    database, job = given.get("database"), given.get("job")
    statuses = given.get("statuses") or given.get("status")
    option = "--statuses" if given.get("statuses") else "--status"
    if slug == "missing-database":
        return "--database is required: name the target database (--database NAME)"
    if slug == "unknown-database":
        return f"--database {database}: the API has no database of that name"
    if slug == "database-forbidden":
        who = "the API key (--api-key)" if "API key" in problem.detail else "the --token's user"
        return f"--database {database}: {who} may not use this database"
    if slug in ("missing-api-key", "invalid-api-key"):
        return "--api-key (or CLAIMPAY_API_KEY): the API does not accept this key"
    if slug in ("missing-bearer-token", "invalid-bearer-token"):
        return "--token (or CLAIMPAY_TOKEN): the API refused the bearer token"
    if slug == "job-not-found" and job:
        where = f" in --database {database}" if database else ""
        return f"no job {job}{where} (unknown, another tenant's, or expired)"
    if slug == "invalid-status-filter" and statuses:
        return f"{option} {statuses}: use HTTP codes and classes such as 409,503 or 5xx"
    if slug == "job-not-finished" and job:
        return f"job {job} has not finished; `claimpay status {job} --watch` follows it"
    if slug == "invalid-request":
        return _parameters_as_options(problem.detail, given)
    return None


QUERY_OPTIONS = {
    "chunkSize": ("--chunk-size", "chunk_size"),
    "page": ("--page", "page"),
    "pageSize": ("--page-size", "page_size"),
    "state": ("--state", "state"),
}
"""Query parameters the client sends, as (its option, the `given` name of its value)."""


def _parameters_as_options(detail: str, given: dict[str, str | None]) -> str | None:
    """`chunkSize: Input should be ...` told as `--chunk-size 90000: Input should be ...`."""
    parts = []
    for part in detail.split("; "):
        name, _, message = part.partition(": ")
        if name not in QUERY_OPTIONS:
            return None
        option, value_name = QUERY_OPTIONS[name]
        value = given.get(value_name)
        parts.append(f"{option} {value}: {message}" if value else f"{option}: {message}")
    return "; ".join(parts) or None


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
