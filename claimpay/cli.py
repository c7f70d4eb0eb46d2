"""The `claimpay` command line: run the API, a worker, Flower or the whole dev stack;
migrate databases; mint dev tokens."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from claimpay.settings import Settings, get_settings

cli = typer.Typer(
    name="claimpay", help="Asynchronous batch upserts with a per-row result.", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


@cli.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API (the producer)."""
    import uvicorn

    _logging()
    uvicorn.run(
        "producer.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker that applies chunks (same as `celery -A worker.celery_app worker`)."""
    from worker.celery_app import create_celery_app

    settings = get_settings()
    app = create_celery_app(settings)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            f"--queues={settings.queue}",
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
    """Run Flower, the live view of workers and tasks."""
    from worker.celery_app import create_celery_app

    if address in ("127.0.0.1", "localhost", "::1"):
        # Bound to loopback only: let the local user read Flower's API without a password.
        os.environ.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    app = create_celery_app(get_settings())
    app.start(["flower", f"--address={address}", f"--port={port}"])


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
    """Mint a bearer token signed with CLAIMPAY_JWT_SECRET."""
    from claimpay.tokens import mint_token

    settings = get_settings()
    typer.echo(mint_token(settings.jwt_secret_value(), user, ttl_s, settings.jwt_algorithm))


@cli.command()
def dev(
    api_port: Annotated[int, typer.Option(help="API port.")] = 8000,
    flower_port: Annotated[int, typer.Option(help="Flower port.")] = 5555,
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    var_dir: Annotated[Path, typer.Option(help="Where dev state lives.")] = Path("var"),
) -> None:
    """Run the whole local stack: embedded Redis, API, one worker, Flower. Ctrl-C stops all."""
    from claimpay import devstack
    from claimpay.tokens import mint_token
    from worker.migrate import upgrade

    secrets = devstack.dev_secrets(var_dir)
    os.environ.setdefault("CLAIMPAY_API_KEYS", json.dumps({secrets["api_key"]: ["*"]}))
    os.environ.setdefault("CLAIMPAY_JWT_SECRET", secrets["jwt_secret"])
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
            bearer = mint_token(settings.jwt_secret_value(), "dev", 24 * 3600)
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
    from claimpay.devstack import find_redis_server

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
    rows = (
        '[{"claimPromptPay_Key": 1, "group_ID": "GRP001", "plan_ID": "PPO", '
        '"prompt_Pay_Duration": 30, "prompt_Pay_Duration_Type": "D", "tax_ID": "123456789"}]'
    )
    return f"""
claimpay dev is running.
  API     {base}   (docs: {base}/docs)
  Flower  http://127.0.0.1:{flower_port}
  Redis   {settings.redis_url}
  Databases: {", ".join(sorted(settings.databases))}

Submit a batch:
  curl -sS -X PUT {base}/claim-prompt-pays-batch \\
    -H 'vbasoftware-database: {database}' {auth} \\
    -H 'Content-Type: application/json' \\
    -d '{rows}'

Poll it and read the results (JOB_ID from the answer above):
  curl -sS {base}/jobs/JOB_ID {auth}
  curl -sS {base}/jobs/JOB_ID/results {auth}

Press Ctrl-C to stop everything.
"""


def main() -> None:
    cli()
