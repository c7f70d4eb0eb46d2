"""The `claimpay` command line: run the API, a worker, Flower or the whole dev stack;
migrate databases; mint dev tokens."""

from __future__ import annotations

import json
import os
import time
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
            "producer.main:create_app",
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
    """Run a Celery worker that applies chunks (same as `celery -A worker.celery_app worker`)."""
    from claimpay.messaging import worker_queues
    from cli.workerhealth import default_node_name
    from worker.celery_app import create_celery_app

    settings = get_settings()
    app = create_celery_app(settings)
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
    """Run the whole local stack: embedded Redis, API, one worker, Flower. Ctrl-C stops all."""
    from cli import devstack
    from producer.tokens import TokenIssuer
    from worker.migrate import upgrade

    secrets = devstack.dev_secrets(var_dir)
    os.environ.setdefault("CLAIMPAY_API_KEYS", json.dumps({secrets["api_key"]: ["*"]}))
    os.environ.setdefault("CLAIMPAY_JWT_SECRET", secrets["jwt_secret"])
    os.environ.setdefault("CLAIMPAY_LOG_FORMAT", "text")
    os.environ.setdefault("CLAIMPAY_WORKER_METRICS_PORT", str(devstack.free_port()))
    group = devstack.ProcessGroup()
    try:
        with devstack.signals_raise_keyboard_interrupt():
            if not os.environ.get("CLAIMPAY_REDIS_URL"):
                port = devstack.free_port()
                redis = group.start("redis", _redis_argv(port, var_dir), dict(os.environ))
                devstack.wait_for_port(port, 15, redis)
                os.environ["CLAIMPAY_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
            get_settings.cache_clear()
            settings = get_settings()
            for name, url in sorted(settings.databases.items()):
                upgrade(url)
                typer.echo(f"database {name}: migrated")
            env = dict(os.environ)
            api_process = group.start(
                "api", devstack.python_argv("api", "--port", str(api_port)), env
            )
            group.start(
                "worker", devstack.python_argv("worker", f"--concurrency={concurrency}"), env
            )
            flower_process = group.start(
                "flower", devstack.python_argv("flower", "--port", str(flower_port)), env
            )
            devstack.wait_for_port(api_port, 60, api_process)
            devstack.wait_for_port(flower_port, 60, flower_process)
            bearer = TokenIssuer.from_settings(settings).mint("dev", 24 * 3600)
            api_key = next(iter(settings.api_keys), secrets["api_key"])
            typer.echo(_banner(settings, api_port, flower_port, api_key, bearer))
            while (exited := group.first_exited()) is None:
                time.sleep(0.5)
            typer.echo(f"{exited.name} exited with {exited.process.returncode}; stopping")
            raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping claimpay dev ...")
    finally:
        group.stop()
        typer.echo("claimpay dev stopped")


def _redis_argv(port: int, var_dir: Path) -> list[str]:
    from cli.devstack import find_redis_server

    var_dir.mkdir(parents=True, exist_ok=True)
    return [
        find_redis_server(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(var_dir),
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def _banner(settings: Settings, api_port: int, flower_port: int, key: str, bearer: str) -> str:
    database = next(iter(sorted(settings.databases)))
    base = f"http://127.0.0.1:{api_port}"
    auth = f"-H 'x-api-key: {key}' -H 'Authorization: Bearer {bearer}'"
    port = settings.worker_metrics_port
    worker_metrics = f"http://127.0.0.1:{port}/metrics" if port else "off"
    rows = (
        '[{"claimPromptPay_Key": 1, "group_ID": "GRP001", "plan_ID": "PPO", '
        '"prompt_Pay_Duration": 30, "prompt_Pay_Duration_Type": "D", "tax_ID": "123456789"}]'
    )
    return f"""
claimpay dev is running.
  API      {base}   (OpenAPI docs: {base}/docs)
  Flower   http://127.0.0.1:{flower_port}   (workers, queues, tasks)
  Metrics  {base}/metrics   (worker: {worker_metrics})
  Health   {base}/health/ready
  Redis    {settings.redis_url}
  Databases: {", ".join(sorted(settings.databases))}

Submit a batch:
  curl -sS -X PUT {base}/claim-prompt-pays-batch \\
    -H 'vbasoftware-database: {database}' {auth} \\
    -H 'Content-Type: application/json' \\
    -d '{rows}'

Poll it and read the results (JOB_ID from the answer above):
  curl -sS {base}/jobs/JOB_ID {auth}
  curl -sS {base}/jobs/JOB_ID/results {auth}

List your jobs, newest first:
  curl -sS -i '{base}/jobs?page=1&pageSize=20' {auth}

Press Ctrl-C to stop everything.
"""


def main() -> None:
    cli()
