"""Worker liveness for compose and Kubernetes probes: does a Celery worker node answer?

A node answers a broadcast `ping` over the broker only while its main process consumes
messages, so a hung or disconnected worker fails the probe. A node that answers while a
pool process is stuck in a database call (marked stalled in the job store, see
`worker.heartbeat`) fails too. The app here is the contracts' (`make_celery`): asking
needs no task code.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Sequence
from typing import Any

from celery import Celery

NODE_PREFIX = "claimpay"


def default_node_name(host: str | None = None, pid: int | None = None) -> str:
    """The node name of `claimpay worker` without `--hostname`: `claimpay@<host>-<pid>`,
    unique per host and worker process group (two nodes on hosts of one name, or two on
    one host, never share a name)."""
    return f"{NODE_PREFIX}@{host or socket.gethostname()}-{pid or os.getpid()}"


def runs_on(node: str, host: str) -> bool:
    """Whether node `node` was named on host `host`: `name@host` (Celery's default) or
    `name@host-<pid>` (claimpay's)."""
    _, _, node_host = node.partition("@")
    return node_host == host or re.fullmatch(re.escape(host) + r"-\d+", node_host) is not None


def ping_node(app: Celery, node: str, timeout_s: float) -> bool:
    """True when worker node `node` answered a ping within `timeout_s`."""
    replies: dict[str, Any] = app.control.inspect(destination=[node], timeout=timeout_s).ping()
    return node in (replies or {})


def local_nodes(app: Celery, timeout_s: float, host: str | None = None) -> list[str]:
    """The nodes of this host (`runs_on`) that answered a broadcast ping within `timeout_s`."""
    host = host or socket.gethostname()
    replies: dict[str, Any] = app.control.inspect(timeout=timeout_s).ping() or {}
    return sorted(node for node in replies if runs_on(node, host))


def nodes_consuming(app: Celery, queues: Sequence[str], timeout_s: float) -> list[str]:
    """The worker nodes that answered within `timeout_s` and consume one of `queues`."""
    replies: dict[str, Any] = app.control.inspect(timeout=timeout_s).active_queues() or {}
    wanted = set(queues)
    return sorted(
        node
        for node, consumed in replies.items()
        if any(queue.get("name") in wanted for queue in consumed or ())
    )
