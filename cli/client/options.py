"""What every client command shares: its options, credentials, error reporting, output."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console

from claimpay.entities import ENTITIES, EntitySpec
from cli.client import display
from cli.client.errors import ClientError, UsageError
from cli.client.http import Credentials

PANEL = "Client (talks to a running API)"
EXIT_ROWS_FAILED = 3
EXIT_NOTHING_RETRIED = 4
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


def known_entity(name: str) -> EntitySpec:
    """The entity called `name` (`--entity`), or a usage error naming the known ones."""
    if name not in ENTITIES:
        raise UsageError(f"--entity {name}: unknown; one of: {', '.join(sorted(ENTITIES))}")
    return ENTITIES[name]


def credentials(url: str, api_key: str | None, token: str | None) -> Credentials:
    if not api_key:
        raise UsageError(
            "no API key: pass --api-key or set CLAIMPAY_API_KEY "
            "(`claimpay dev` prints an export line with one)"
        )
    if not token:
        raise UsageError(
            "no bearer token: pass --token or set CLAIMPAY_TOKEN "
            "(`claimpay token --user U` mints one)"
        )
    return Credentials(url=url, api_key=api_key, token=token)


@contextlib.contextmanager
def reported(err: Console, **given: str | None) -> Iterator[None]:
    """Turn a `ClientError` into its message on stderr and its exit code; `given` are the
    option values the message may name (`database`, `job`, `statuses`)."""
    try:
        yield
    except ClientError as exc:
        message = display.error_message(exc, given)
        err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


@contextlib.contextmanager
def destination(output: Path | None) -> Iterator[IO[bytes]]:
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
