"""Prometheus multi-process mode: the one place that sets `PROMETHEUS_MULTIPROC_DIR`.

A process that forks workers (uvicorn with `--workers`, a Celery worker's pool) gives them
a fresh directory of its own before they build any metric; each process then writes its
samples to files there and the exposition merges them. `prometheus_client` decides the
mode when first imported, from this environment variable (see `prepare` when it was
imported earlier).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


def prepare(prefix: str) -> Path:
    """Create a fresh directory and put this process (and its future children) in
    multi-process mode."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ[ENV_VAR] = str(path)
    if "prometheus_client.values" in sys.modules:
        # Already imported, in single-process mode: the `celery` command loads its plugins
        # (Flower among them, which imports prometheus_client) before any code of ours.
        # Metrics read `values.ValueClass` when they are built, so ours, built after this,
        # write to the directory.
        from prometheus_client import values

        if not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return path


def active_dir() -> Path | None:
    """The multi-process directory of this process, if it is in that mode."""
    value = os.environ.get(ENV_VAR)
    return Path(value) if value else None


def cleanup(path: Path) -> None:
    """Remove the directory `prepare` made (when the process that made it stops)."""
    if os.environ.get(ENV_VAR) == str(path):
        del os.environ[ENV_VAR]
    shutil.rmtree(path, ignore_errors=True)
