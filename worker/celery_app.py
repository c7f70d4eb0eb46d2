"""The worker's Celery app, built by `create_celery_app`.

`celery -A worker.celery_app worker` finds `app` here; it is built on first access, from
the environment's settings, so importing this module connects to nothing.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from kombu.entity import Exchange, Queue

from claimpay.connections import make_job_store
from claimpay.heap import freeze_startup_heap
from claimpay.messaging import CeleryEnqueuer, make_celery, worker_queues
from claimpay.settings import Settings, get_settings
from worker.context import ContextHolder
from worker.observability import install_observability
from worker.recovery import Sweeper
from worker.sender import WebhookSender
from worker.tasks import register_tasks


def create_celery_app(settings: Settings | None = None) -> Celery:
    """A Celery app with claimpay's tasks registered, for `settings` (default: environment).

    A worker started from it also runs, in its main process, the recovery sweep (see
    `worker.recovery`) and the webhook senders (see `worker.sender`)."""
    settings = settings or get_settings()
    app = make_celery(settings, main="claimpay.worker")
    # A worker started without --queues consumes the main queue and the fast one.
    app.conf.task_queues = [_queue(name) for name in worker_queues(settings)]
    # Celery's consumer, corrected to survive a Redis restart (see `worker.broker`).
    app.conf.worker_consumer = "worker.broker:Consumer"
    install_observability(app, settings)
    enqueuer = CeleryEnqueuer(app, settings.queue)
    # A chunk recorded queues its job's next one (`job_window_chunks`), from the pool.
    contexts = ContextHolder(settings, enqueuer)
    register_tasks(app, settings, contexts)
    sweepers: list[Sweeper | WebhookSender] = []

    def _fresh_context(**_: Any) -> None:
        contexts.reset()

    def _start_sweeper(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        store = make_job_store(settings)
        sweeper = Sweeper(
            store,
            enqueuer,
            settings,
            lambda: sum(int(store.redis.llen(q)) for q in worker_queues(settings)),
        )
        sweeper.start()
        sweepers.append(sweeper)
        sender = WebhookSender(store, settings)
        sender.start()
        sweepers.append(sender)

    def _stop_sweeper(**_: Any) -> None:
        while sweepers:
            sweepers.pop().stop()

    worker_process_init.connect(_fresh_context, weak=False)
    worker_ready.connect(_start_sweeper, weak=False)
    worker_shutdown.connect(_stop_sweeper, weak=False)
    return app


def freeze_when_set_up(app: Celery) -> None:
    """A server's worker (`claimpay worker`): each pool process freezes its start-up heap
    once set up, and the main process once the node is ready (`claimpay.heap`). Connected
    after every other start-up receiver, so that it runs last."""
    worker_process_init.connect(freeze_startup_heap, weak=False)

    def _main_process_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            freeze_startup_heap()

    worker_ready.connect(_main_process_ready, weak=False)


def _queue(name: str) -> Queue:
    """A queue declared as Celery declares a missing one (a direct exchange of its name)."""
    return Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = create_celery_app()
        return _app
    raise AttributeError(name)
