"""Queue routing: small jobs go to `<queue>.fast`, workers consume both by default."""

from __future__ import annotations

import pytest

from claimpay.messaging import fast_queue, queue_for, worker_queues
from tests.factories import make_settings


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(1, "claimpay.fast"), (1_000, "claimpay.fast"), (1_001, "claimpay"), (0, "claimpay")],
)
def test_jobs_up_to_the_limit_go_to_the_fast_queue(rows: int, expected: str) -> None:
    assert queue_for(make_settings(fast_queue_max_rows=1_000), rows) == expected


def test_no_fast_queue_when_the_limit_is_zero() -> None:
    settings = make_settings(fast_queue_max_rows=0)
    assert queue_for(settings, 1) == "claimpay"
    assert worker_queues(settings) == ["claimpay"]


def test_workers_consume_the_main_and_the_fast_queue_of_their_deployment() -> None:
    settings = make_settings(queue="tenant-a")
    assert worker_queues(settings) == ["tenant-a", "tenant-a.fast"]
    assert fast_queue("tenant-a") == "tenant-a.fast"


def test_the_worker_app_declares_both_queues() -> None:
    from worker.celery_app import create_celery_app

    app = create_celery_app(make_settings(queue="tenant-b"))
    assert [queue.name for queue in app.conf.task_queues] == ["tenant-b", "tenant-b.fast"]
