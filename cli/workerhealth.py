"""Worker liveness for compose and Kubernetes probes: does a Celery worker node answer?

A node answers a broadcast `ping` over the broker only while its main process consumes
messages, so a hung or disconnected worker fails the probe. The app here is the contracts'
(`make_celery`): asking needs no task code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery
from celery.utils.nodenames import default_nodename


def local_node() -> str:
    """The node name a worker started on this host without `--hostname` has."""
    return str(default_nodename(None))


def ping_node(app: Celery, node: str, timeout_s: float) -> bool:
    """True when worker node `node` answered a ping within `timeout_s`."""
    replies: dict[str, Any] = app.control.inspect(destination=[node], timeout=timeout_s).ping()
    return node in (replies or {})


def nodes_consuming(app: Celery, queues: Sequence[str], timeout_s: float) -> list[str]:
    """The worker nodes that answered within `timeout_s` and consume one of `queues`."""
    replies: dict[str, Any] = app.control.inspect(timeout=timeout_s).active_queues() or {}
    wanted = set(queues)
    return sorted(
        node
        for node, consumed in replies.items()
        if any(queue.get("name") in wanted for queue in consumed or ())
    )
