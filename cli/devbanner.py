"""The banner of `claimpay dev`: where everything runs, where its data lives, and how to
talk to it, with the CLI (one `export` line, a sample file) or with curl."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from claimpay.settings import Settings

SAMPLE_FILE = Path(__file__).resolve().parents[1] / "examples" / "claim-prompt-pays.csv"
"""A small CSV with a few bad rows, in a clone of the repository (not in the wheel)."""
CURL_ROWS = (
    '[{"claimPromptPay_Key": 1, "group_ID": "GRP001", "plan_ID": "PPO", '
    '"prompt_Pay_Duration": 30, "prompt_Pay_Duration_Type": "D", "tax_ID": "123456789"}]'
)


@dataclass(frozen=True)
class DevStack:
    """What the banner tells: addresses, credentials and the places data is kept."""

    settings: Settings
    api_port: int
    flower_port: int
    api_key: str
    bearer: str
    logs_dir: Path
    redis_dir: Path | None
    """None when the stack uses a Redis of the user's (`CLAIMPAY_REDIS_URL`)."""
    secrets_file: Path


def shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def claimpay_command() -> str:
    """How to run this installation's `claimpay` from the working directory."""
    script = Path(sys.executable).parent / "claimpay"
    on_path = shutil.which("claimpay")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "claimpay"
    if script.exists():
        return shown(script)
    return f"{shlex.quote(sys.executable)} -m cli"


def where_data_lives(stack: DevStack) -> list[str]:
    lines = []
    for name, url in sorted(stack.settings.databases.items()):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            lines.append(f"database {name}: {shown(Path(parsed.database))} (SQLite)")
        else:
            lines.append(f"database {name}: {parsed.render_as_string(hide_password=True)}")
    if stack.redis_dir is not None:
        lines.append(
            f"Redis: {shown(stack.redis_dir)}/ (append-only file: jobs and results survive "
            "a restart)"
        )
    else:
        lines.append("Redis: yours (CLAIMPAY_REDIS_URL): its own persistence applies")
    lines.append(f"logs: {shown(stack.logs_dir)}/ (api, worker, flower, redis .log)")
    lines.append(f"API key and token secret: {shown(stack.secrets_file)}")
    return lines


def banner(stack: DevStack) -> str:
    base = f"http://127.0.0.1:{stack.api_port}"
    database = next(iter(sorted(stack.settings.databases)))
    port = stack.settings.worker_metrics_port
    worker_metrics = f"http://127.0.0.1:{port}/metrics" if port else "off"
    cli = claimpay_command()
    exports = " ".join(
        f"{name}={shlex.quote(value)}"
        for name, value in (
            ("CLAIMPAY_URL", base),
            ("CLAIMPAY_API_KEY", stack.api_key),
            ("CLAIMPAY_TOKEN", stack.bearer),
        )
    )
    sample = shown(SAMPLE_FILE) if SAMPLE_FILE.exists() else "rows.csv"
    auth = f"-H 'x-api-key: {stack.api_key}' -H 'Authorization: Bearer {stack.bearer}'"
    data = "\n".join(f"  {line}" for line in where_data_lives(stack))
    return f"""
claimpay dev is running.
  API      {base}   (OpenAPI docs, offline: {base}/docs)
  Flower   http://127.0.0.1:{stack.flower_port}   (workers, queues, tasks)
  Metrics  {base}/metrics   (worker: {worker_metrics})
  Health   {base}/health/ready

Data, kept across restarts (delete the files to start afresh):
{data}

With the CLI, in another shell (the token is valid 24 h; `{cli} token --user dev` mints
another):
  export {exports}
  {cli} submit {sample} --database {database} --wait
  {cli} results JOB_ID --failed

With curl:
  curl -sS -X PUT {base}/claim-prompt-pays-batch \\
    -H 'vbasoftware-database: {database}' {auth} \\
    -H 'Content-Type: application/json' \\
    -d '{CURL_ROWS}'
  curl -sS {base}/jobs/JOB_ID {auth}
  curl -sS {base}/jobs/JOB_ID/results {auth}
  curl -sS -i '{base}/jobs?page=1&pageSize=20' {auth}

Press Ctrl-C to stop everything.
"""
