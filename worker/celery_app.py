"""The worker's Celery app, built by `create_celery_app`.

`celery -A worker.celery_app worker` finds `app` here; it is built on first access, from
the environment's settings, so importing this module connects to nothing.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from claimpay.messaging import make_celery
from claimpay.settings import Settings, get_settings
from worker.context import ContextHolder
from worker.tasks import register_tasks


def create_celery_app(settings: Settings | None = None) -> Celery:
    """A Celery app with claimpay's tasks registered, for `settings` (default: environment)."""
    settings = settings or get_settings()
    app = make_celery(settings, main="claimpay.worker")
    contexts = ContextHolder(settings)
    register_tasks(app, settings, contexts)

    def _fresh_context(**_: Any) -> None:
        contexts.reset()

    worker_process_init.connect(_fresh_context, weak=False)
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = create_celery_app()
        return _app
    raise AttributeError(name)
