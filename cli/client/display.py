"""What the client shows people: job tables, the summary of a job, error messages (Rich).

Tables and results go to stdout; progress bars and errors go to stderr, so that the output
of `claimpay results` can be piped.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from cli.client.errors import ApiProblem, ClientError
from cli.client.results import ResultsSummary

STATUS_FIELDS = (
    ("jobId", "Job"),
    ("state", "State"),
    ("database", "Database"),
    ("total", "Rows"),
    ("processed", "Processed"),
    ("created", "Created"),
    ("updated", "Updated"),
    ("failed", "Failed"),
    ("notProcessed", "Not processed"),
    ("submittedAt", "Submitted"),
    ("finishedAt", "Finished"),
)


def consoles() -> tuple[Console, Console]:
    """(stdout, stderr) consoles."""
    return Console(), Console(stderr=True)


def status_table(data: dict[str, Any]) -> Table:
    """A job's status, one field per line."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, label in STATUS_FIELDS:
        if key in data:
            table.add_row(label, _text(data[key]))
    for key, value in data.items():
        if key not in dict(STATUS_FIELDS):
            table.add_row(key, _text(value))
    return table


def summary_table(status: dict[str, Any]) -> Table:
    """Created / updated / failed (/ not processed) rows of a finished job."""
    table = Table(title=f"Job {status.get('state', '?')}", title_justify="left")
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


def error_message(exc: ClientError) -> str:
    """One line (two for an API problem with an activity ID) saying what went wrong."""
    if isinstance(exc, ApiProblem):
        text = f"Error {exc.status} {exc.title}"
        text += f": {exc.detail}" if exc.detail else ""
        if exc.activity_id:
            text += f"\n  (activity ID {exc.activity_id})"
        return text
    return f"Error: {exc}"


def _text(value: Any) -> str:
    return "-" if value is None else str(value)
