"""The `claimpay` command line: run the API, a worker, Flower or the whole dev stack;
migrate databases; mint dev tokens."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from claimpay.settings import Settings, get_settings
from cli.client.commands import register_client_commands

cli = typer.Typer(
    name="claimpay", help="Asynchronous batch upserts with a per-row result.", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"claimpay {version('claimpay')}")
        except PackageNotFoundError:
            typer.echo("claimpay (version unknown: not installed as a package)")
        raise typer.Exit()


@cli.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version, exit."
        ),
    ] = False,
) -> None:
    """Asynchronous batch upserts with a per-row result."""


cli.add_typer(db_cli, name="db")
register_client_commands(cli)

DEV_VAR_DIR = Path("var")
"""Where `claimpay dev` keeps its state (default of its --var-dir)."""


def _logging(settings: Settings) -> None:
    from claimpay.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)


@cli.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API (the producer)."""
    import uvicorn

    from claimpay import multiproc
    from claimpay.logs import logging_config
    from producer.httpserver import BoundedHttpToolsProtocol

    settings = get_settings()
    _logging(settings)
    # Every uvicorn worker process writes its metrics where any of them can merge them.
    directory = multiproc.prepare("claimpay-api-metrics-")
    try:
        uvicorn.run(
            "producer.main:create_server_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(settings.log_format, settings.log_level),
            access_log=False,
            # httptools, with bounds on request heads (size, count, time): 431 / 408.
            http=BoundedHttpToolsProtocol,
        )
    finally:
        multiproc.cleanup(directory)


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    queues: Annotated[
        str | None,
        typer.Option(help="Comma-separated queues to consume (default: the main and fast one)."),
    ] = None,
    hostname: Annotated[
        str | None,
        typer.Option(
            "--hostname",
            "-n",
            help="Celery node name (default: claimpay@<host>-<pid>, unique per host and "
            "process group; Celery's %h, %n, %d expand).",
        ),
    ] = None,
) -> None:
    """Run a Celery worker that applies chunks (as `celery -A worker.celery_app worker` does,
    and each process then freezes its start-up heap: `claimpay.heap`)."""
    from claimpay.messaging import worker_queues
    from cli.workerhealth import default_node_name
    from worker.celery_app import create_celery_app, freeze_when_set_up

    settings = get_settings()
    app = create_celery_app(settings)
    freeze_when_set_up(app)
    app.worker_main(
        [
            "worker",
            f"--hostname={hostname or default_node_name()}",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--queues={queues or ','.join(worker_queues(settings))}",
            "--task-events",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@cli.command()
def flower(
    address: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 5555,
) -> None:
    """Run Flower, the live view of workers and tasks (basic auth: CLAIMPAY_FLOWER_BASIC_AUTH)."""
    from cli.flowerconf import FlowerRefused, flower_environment, is_loopback
    from worker.celery_app import create_celery_app

    settings = get_settings()
    try:
        os.environ.update(flower_environment(settings, address))
    except FlowerRefused as exc:
        typer.echo(f"claimpay flower: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.flower_basic_auth and not is_loopback(address):
        typer.echo(f"claimpay flower: no CLAIMPAY_FLOWER_BASIC_AUTH; open on {address}", err=True)
    app = create_celery_app(settings)
    app.start(["flower", f"--address={address}", f"--port={port}"])


@cli.command("worker-health")
def worker_health(
    node: Annotated[
        str | None,
        typer.Option(help="Worker node to ping (default: the nodes running on this host)."),
    ] = None,
    any_node: Annotated[
        bool, typer.Option("--any", help="Succeed when any node consuming our queues answers.")
    ] = False,
    timeout_s: Annotated[float, typer.Option("--timeout-s", help="Wait for answers.")] = 5.0,
) -> None:
    """Liveness probe of Celery workers: exit 0 when the node answers and no pool process of
    it is stuck in a database call, 1 when not."""
    from claimpay.connections import make_job_store
    from claimpay.messaging import make_celery, worker_queues
    from cli.workerhealth import local_nodes, nodes_consuming, ping_node

    settings = get_settings()
    app = make_celery(settings)
    try:
        if any_node:
            found = nodes_consuming(app, worker_queues(settings), timeout_s)
            alive, what = bool(found), ", ".join(found) or "no worker consumes our queues"
        elif node:
            found = [node] if ping_node(app, node, timeout_s) else []
            alive, what = bool(found), node
        else:
            found = local_nodes(app, timeout_s)
            alive, what = bool(found), ", ".join(found) or "no worker node on this host answered"
        store = make_job_store(settings)
        stuck = [name for name in found if store.stalled(name)]
        store.redis.close()
    except Exception as exc:  # the broker is down: no worker can answer either
        alive, what, stuck = False, f"broker unreachable ({type(exc).__name__})", []
    if stuck and (not any_node or set(stuck) == set(found)):
        typer.echo(f"stuck: {', '.join(stuck)} (a pool process is stuck in a database call)")
        raise typer.Exit(1)
    typer.echo(f"{'ok' if alive else 'no answer'}: {what}")
    raise typer.Exit(0 if alive else 1)


@db_cli.command("upgrade")
def db_upgrade(
    database: Annotated[
        str | None, typer.Option(help="Only this configured database (default: all).")
    ] = None,
) -> None:
    """Apply the Alembic migrations to each configured database."""
    from worker.migrate import upgrade

    settings = get_settings()
    names = [database] if database else sorted(settings.databases)
    for name in names:
        if name not in settings.databases:
            typer.echo(f"unknown database {name!r}; configured: {sorted(settings.databases)}")
            raise typer.Exit(2)
        upgrade(settings.databases[name])
        typer.echo(f"{name}: at the newest schema")


@cli.command()
def token(
    user: Annotated[str, typer.Option(help="The token's subject (fills update_User).")],
    ttl_s: Annotated[int, typer.Option("--ttl-s", help="Validity in seconds.")] = 24 * 3600,
) -> None:
    """Mint a bearer token signed with CLAIMPAY_JWT_SECRET (or CLAIMPAY_JWT_PRIVATE_KEY);
    in dev without one, with the secret `claimpay dev` keeps in var/dev-secrets.json."""
    from cli import devstack
    from producer.tokens import TokenIssuer

    settings = get_settings()
    stored = DEV_VAR_DIR / devstack.DEV_SECRETS_FILE
    if settings.env == "dev" and settings.jwt_secret is None and stored.exists():
        secret = devstack.dev_secrets(DEV_VAR_DIR)["jwt_secret"]
        settings = settings.model_copy(update={"jwt_secret": SecretStr(secret)})
    try:
        issuer = TokenIssuer.from_settings(settings)
    except (RuntimeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(issuer.mint(user, ttl_s))


@cli.command("hash-password")
def hash_password(
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            confirmation_prompt=True,
            hide_input=True,
            help="The password (asked for when left out, so it stays out of the shell history).",
        ),
    ],
) -> None:
    """Print the Argon2id hash of a password, for a user in CLAIMPAY_USERS."""
    from claimpay.passwords import hash_password as argon2_hash

    typer.echo(argon2_hash(password))


@cli.command()
def dev(
    api_port: Annotated[int, typer.Option(help="API port.")] = 8000,
    flower_port: Annotated[int, typer.Option(help="Flower port.")] = 5555,
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    var_dir: Annotated[Path, typer.Option(help="Where dev state lives.")] = DEV_VAR_DIR,
) -> None:
    """Run the whole local stack: embedded Redis (kept in var/redis), API, one worker,
    Flower (logs in var/logs). Ctrl-C stops all, Redis last."""
    from cli.dev import DevOptions, run

    code = run(DevOptions(api_port, flower_port, concurrency, var_dir))
    raise typer.Exit(code)


def main() -> None:
    cli()
