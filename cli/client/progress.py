"""Live progress bars (Rich): checking and uploading a file, then following a job to its end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.client.http import ApiClient

POLL_INTERVAL_S = 0.5
"""How often `GET /jobs/{id}` is polled while following a job."""
TERMINAL_STATES = frozenset({"completed", "cancelled"})


@contextmanager
def file_progress(
    console: Console, label: str, total_bytes: int
) -> Iterator[Callable[[int], None]]:
    """A bar over the bytes of a file; yields the callback that moves it."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=_quiet(console)) as progress:
        task = progress.add_task(label, total=total_bytes or None)
        yield lambda done: progress.update(task, completed=done)


def follow_job(
    client: ApiClient,
    job_id: str,
    database: str | None,
    console: Console,
    poll_s: float = POLL_INTERVAL_S,
) -> dict[str, Any]:
    """Poll the job until it is completed or cancelled, with a bar of processed rows;
    returns its final status."""
    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[chunks]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=_quiet(console)) as progress:
        task = progress.add_task("queued", total=None, chunks="", rate="")
        while True:
            status = client.job(job_id, database)
            total = int(status.get("total") or 0)
            progress.update(
                task,
                description=str(status.get("state")),
                total=total or None,
                completed=int(status.get("processed") or 0),
                chunks=_chunks(status),
                rate=_rate(progress.tasks[task].speed),
            )
            if status.get("state") in TERMINAL_STATES:
                return status
            time.sleep(poll_s)


def _chunks(status: dict[str, Any]) -> str:
    if status.get("chunksDone") is None or not status.get("chunks"):
        return ""
    return f"chunks {status['chunksDone']}/{status['chunks']}"


def _rate(rows_per_s: float | None) -> str:
    return f"{rows_per_s:,.0f} rows/s" if rows_per_s else ""


def _quiet(console: Console) -> bool:
    # A bar redrawn into a log file or a pipe is noise: show it on terminals only.
    return not console.is_terminal
