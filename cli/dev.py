"""`claimpay dev`, start to stop: check, start the processes, print the banner, wait for
Ctrl-C (or a child's death), stop them in order. See `cli.devstack` for the pieces."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from claimpay.settings import Settings, get_settings
from cli import devstack
from cli.devbanner import DevStack, banner, shown

WORKER_READY_S = 60.0


@dataclass(frozen=True)
class DevOptions:
    api_port: int
    flower_port: int
    concurrency: int
    var_dir: Path


def run(options: DevOptions) -> int:
    """Run the stack until Ctrl-C; the exit code (0 after Ctrl-C, 1 when it could not
    start or a process died). A busy port or a `var/` in use stops it before anything
    starts, with one line naming the cause."""
    ports = {"the API, --api-port": options.api_port, "Flower, --flower-port": options.flower_port}
    metrics_port = os.environ.get("CLAIMPAY_WORKER_METRICS_PORT", "")
    if metrics_port.isdigit() and int(metrics_port):
        ports["the worker's metrics, CLAIMPAY_WORKER_METRICS_PORT"] = int(metrics_port)
    try:
        devstack.check_ports(ports)
        with devstack.var_dir_lock(options.var_dir):
            return _run(options)
    except devstack.DevStackError as exc:
        typer.echo(f"claimpay dev: {exc}", err=True)
        return 1


def _run(options: DevOptions) -> int:
    secrets = devstack.dev_secrets(options.var_dir)
    os.environ.setdefault("CLAIMPAY_API_KEYS", json.dumps({secrets["api_key"]: ["*"]}))
    os.environ.setdefault("CLAIMPAY_JWT_SECRET", secrets["jwt_secret"])
    os.environ.setdefault("CLAIMPAY_LOG_FORMAT", "text")
    os.environ.setdefault("CLAIMPAY_WORKER_METRICS_PORT", str(devstack.free_port()))
    group = devstack.ProcessGroup(options.var_dir / devstack.LOGS_DIR)
    code = 1
    try:
        with devstack.signals_raise_keyboard_interrupt():
            code = _serve(options, group, secrets)
    except KeyboardInterrupt:
        code = 0
    except devstack.DevStackError as exc:
        typer.echo(f"claimpay dev: {exc}", err=True)
    finally:
        with devstack.signals_ignored():
            if code == 0:
                typer.echo("stopping claimpay dev: API, worker and Flower first, then Redis ...")
            group.stop()
            typer.echo(f"claimpay dev stopped; its data stays in {shown(options.var_dir)}/")
    return code


def _serve(options: DevOptions, group: devstack.ProcessGroup, secrets: dict[str, str]) -> int:
    from producer.tokens import TokenIssuer
    from worker.migrate import upgrade

    redis_dir = None
    if not os.environ.get("CLAIMPAY_REDIS_URL"):
        redis_dir = options.var_dir / devstack.REDIS_DIR
        port = devstack.free_port()
        redis = group.start(
            "redis", devstack.redis_argv(port, redis_dir), dict(os.environ), last=True
        )
        devstack.wait_for_port(port, 30, redis)
        os.environ["CLAIMPAY_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    get_settings.cache_clear()
    settings = get_settings()
    for name, url in sorted(settings.databases.items()):
        upgrade(url)
        typer.echo(f"database {name}: migrated")
    env = dict(os.environ)
    api = group.start("api", devstack.python_argv("api", "--port", str(options.api_port)), env)
    worker_argv = devstack.python_argv("worker", f"--concurrency={options.concurrency}")
    worker = group.start("worker", worker_argv, env)
    flower_argv = devstack.python_argv("flower", "--port", str(options.flower_port))
    flower = group.start("flower", flower_argv, env)
    devstack.wait_for_port(options.api_port, 60, api)
    devstack.wait_for_port(options.flower_port, 60, flower)
    devstack.wait_for_line(worker, " ready.", WORKER_READY_S)
    stack = DevStack(
        settings=settings,
        api_port=options.api_port,
        flower_port=options.flower_port,
        api_key=secrets["api_key"] if secrets["api_key"] in settings.api_keys else _a_key(settings),
        bearer=TokenIssuer.from_settings(settings).mint("dev", 24 * 3600),
        logs_dir=group.logs_dir,
        redis_dir=redis_dir,
        secrets_file=options.var_dir / devstack.DEV_SECRETS_FILE,
    )
    typer.echo(banner(stack))
    while (exited := group.first_exited()) is None:
        time.sleep(0.5)
    returncode = exited.process.returncode
    typer.echo(f"{exited.name} exited with {returncode} (see {shown(exited.log_path)}); stopping")
    return 1


def _a_key(settings: Settings) -> str:
    """A configured plaintext API key to show, when the user configured their own."""
    keys = settings.api_keys
    return next((key for key in keys if not key.startswith("sha256:")), "<your API key>")
