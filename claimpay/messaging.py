"""Task names and the Celery configuration both sides share.

The producer sends tasks by name (`send_task`) through an app built here and never imports
the worker; the worker registers its tasks on an app built from the same configuration,
so broker options such as the visibility timeout always agree.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from claimpay.settings import Settings

APPLY_CHUNK = "claimpay.apply_chunk"
"""Task `(job_id, chunk_no)`: apply one stored chunk of a job's rows."""


def celery_config(settings: Settings) -> dict[str, Any]:
    """At-least-once delivery with an exactly-once effect; see DESIGN in the README."""
    return {
        "broker_url": settings.require_redis_url(),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_s},
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": settings.queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


def make_celery(settings: Settings, main: str = "claimpay") -> Celery:
    """A Celery app configured for claimpay; connects lazily, on first use."""
    app = Celery(main, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
