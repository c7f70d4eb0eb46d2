"""Multi-process metrics: every process writes to the directory, a scrape adds them up,
even when prometheus_client was imported before the directory was made."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import prometheus_client  # imported first, as the `celery` command's plugins do
    from claimpay import multiproc

    directory = multiproc.prepare("claimpay-test-metrics-")
    from prometheus_client import CollectorRegistry, Counter, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    counter = Counter("claimpay_test_things", "Things.", registry=None)
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            counter.inc(2)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    text = generate_latest(registry).decode()
    multiproc.cleanup(directory)
    assert not directory.exists()
    assert multiproc.ENV_VAR not in os.environ
    sys.stdout.write(text)
    """
)


def test_children_counts_add_up_in_one_scrape() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "claimpay_test_things_total 6.0" in done.stdout
