"""The worker's broker consumer: Celery's, corrected to survive a Redis restart.

Celery 5.7 cleans up a lost broker connection with `Connection.collect()` and then
`connection.close()`. When the loss is first seen on the remote-control (pidbox) channel
while the task channel has a blocking read pending and a task unacknowledged, `collect()`
fails to close the task channel and still leaves it as the connection's default channel;
`close()` then closes it again and restores its unacknowledged messages through a transport
whose client is already `None`: `AttributeError: 'NoneType' object has no attribute
'hostname'` escapes and the worker exits. `Consumer` forgets that stale channel after
`collect()`, and once connected again puts the messages it had received back in their queue
(kombu's `unacked` copies; Redis could not take them back while it was down), so a chunk
whose message was in flight runs again at once instead of after the visibility timeout.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery.utils.threads import bound_open_broker_sockets
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.connection import Connection

log = logging.getLogger("claimpay.worker")

COLLECT_SOCKET_TIMEOUT_S = 5.0
"""How long the cleanup may read from a socket of the lost connection (as Celery's)."""


def received_tags(connection: Connection) -> list[str]:
    """Delivery tags of the messages the connection's channels received and never acked."""
    transport = getattr(connection, "_transport", None)
    channels = list(getattr(transport, "channels", None) or [])
    default = getattr(connection, "_default_channel", None)
    if default is not None and default not in channels:
        channels.append(default)
    tags: list[str] = []
    for channel in channels:
        qos = getattr(channel, "_qos", None)
        tags.extend(str(tag) for tag in getattr(qos, "_delivered", None) or ())
    return tags


def collect_lost(connection: Connection) -> None:
    """`connection.collect()`, then drop a default channel it failed to close: closing that
    one again restores messages through a transport without a client (and raises)."""
    bound_open_broker_sockets(connection, COLLECT_SOCKET_TIMEOUT_S)
    with contextlib.suppress(Exception):
        connection.collect(socket_timeout=COLLECT_SOCKET_TIMEOUT_S)  # type: ignore[no-untyped-call]
    # kombu keeps the default channel in this attribute; it has no public way to drop it.
    connection._default_channel = None


def restore_received(connection: Connection, tags: list[str]) -> int:
    """Put the messages of `tags` back in their queues (from kombu's `unacked` hash);
    returns how many were restored. A tag whose message is gone is skipped."""
    restored = 0
    qos = connection.default_channel.qos
    for tag in tags:
        try:
            qos.restore_by_tag(tag)  # to the head of its queue: it runs next
            restored += 1
        except Exception as exc:  # the next loss or the recovery sweep covers it
            log.warning("restoring an unacknowledged message failed (%s)", type(exc).__name__)
    return restored


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer, surviving the loss of a Redis broker (see the module doc)."""

    _lost_tags: tuple[str, ...] = ()
    """Tags of the messages received on connections lost since the last connect."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            self._lost_tags = (*self._lost_tags, *received_tags(connection))
            collect_lost(connection)
        super().on_connection_error_after_connected(exc)

    def connect(self) -> Any:
        connection = super().connect()
        tags, self._lost_tags = list(self._lost_tags), ()
        if tags:
            restored = restore_received(connection, tags)
            log.warning("broker back: %d received message(s) queued again", restored)
        return connection
