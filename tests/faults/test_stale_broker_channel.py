# mypy: disable-error-code="no-untyped-call"
"""Regression: a Redis restart seen first on the remote-control channel, while the task
channel has a blocking read pending and a task unacknowledged, must not kill the worker.

Reproduced with kombu alone on a test-owned `redis-server`, step by step (no race): the
state Celery 5.7's consumer meets, then its cleanup (`collect()`, then `close()`), stock
and as `worker.broker.Consumer` does it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from redis import Redis

from tests.faults.redis_server import RedisServer
from worker.broker import Consumer, collect_lost, received_tags, restore_received

pytestmark = pytest.mark.redis

QUEUE = "cp-stale-channel"


@dataclass
class LostBroker:
    """A kombu connection as the broker vanished under it."""

    connection: Connection
    tag: str
    """Delivery tag of the message the task channel received and never acked."""


@pytest.fixture
def lost_broker(redis_server: RedisServer) -> Iterator[LostBroker]:
    connection = Connection(redis_server.url, transport_options={"visibility_timeout": 3600})
    connection.ensure_connection(max_retries=3)
    tasks: Any = connection.default_channel  # the redis transport's Channel
    queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE)
    control = connection.channel()  # Celery's remote-control (pidbox) channel: a fanout
    fanout = Queue(f"{QUEUE}.pidbox", Exchange(f"{QUEUE}.pidbox", type="fanout"), auto_delete=True)
    connection.Consumer(fanout, channel=control, callbacks=[_ignore], no_ack=True).consume()
    connection.Producer(tasks).publish(
        {"task": 1}, exchange=queue.exchange, routing_key=QUEUE, declare=[queue]
    )
    received: list[Any] = []
    consumer = connection.Consumer(
        queue, channel=tasks, callbacks=[lambda _b, m: received.append(m)]
    )
    consumer.consume()
    while not received:
        connection.drain_events(timeout=5)
    if not tasks._in_poll:
        tasks._brpop_start()  # the task channel's blocking read, pending
    assert tasks._in_poll
    assert control._in_listen
    assert tasks.qos._delivered
    redis_server.kill()  # the broker is gone (a restart begins)
    with pytest.raises(connection.connection_errors):
        control._receive()  # ...and the remote-control channel sees it first
    try:
        yield LostBroker(connection, received[0].delivery_tag)
    finally:
        tasks.qos._delivered.clear()  # nothing for kombu to restore (noisily) at exit
        with contextlib.suppress(Exception):
            connection.release()


def _ignore(_body: Any, _message: Any) -> None:
    pass


def test_stock_cleanup_crashes_on_the_stale_default_channel(lost_broker: LostBroker) -> None:
    """What Celery 5.7.0's consumer does today: the AttributeError that killed workers."""
    connection = lost_broker.connection
    connection.collect(socket_timeout=5)
    assert connection._default_channel is not None  # the stale task channel stayed
    with pytest.raises(AttributeError, match="hostname"):
        connection.close()


def test_collect_lost_leaves_a_connection_that_closes_cleanly(lost_broker: LostBroker) -> None:
    connection = lost_broker.connection
    assert received_tags(connection) == [lost_broker.tag]
    collect_lost(connection)
    assert connection._default_channel is None
    connection.close()  # no AttributeError


def test_the_consumer_survives_the_loss_and_requeues_what_it_had_received(
    lost_broker: LostBroker, redis_server: RedisServer
) -> None:
    app = Celery("stale-channel", set_as_current=False)
    app.conf.worker_cancel_long_running_tasks_on_connection_loss = True
    app.conf.worker_enable_prefetch_count_reduction = False
    consumer = Consumer.__new__(Consumer)  # only what the error path reads
    consumer.app, consumer.pool = app, None
    consumer.connection = lost_broker.connection
    consumer.on_connection_error_after_connected(ConnectionError("Connection closed by server"))
    assert consumer.connection is None
    assert consumer._lost_tags == (lost_broker.tag,)

    redis_server.start()  # AOF: kombu's unacked copy of the message is back with Redis
    redis = Redis.from_url(redis_server.url)
    reconnected = Connection(redis_server.url)
    try:
        assert redis.llen(QUEUE) == 0
        assert restore_received(reconnected, list(consumer._lost_tags)) == 1
        assert redis.llen(QUEUE) == 1  # queued again: the next worker to ask runs it
        assert not redis.hexists("unacked", lost_broker.tag)
    finally:
        reconnected.release()
        redis.close()
