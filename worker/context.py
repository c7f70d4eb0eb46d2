"""What a worker process needs to run chunks, built once per process (after fork)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from claimpay.connections import make_job_store
from claimpay.engines import DbLimits
from claimpay.jobstore import JobStore
from claimpay.messaging import Enqueuer
from claimpay.settings import Settings
from worker.engines import EngineRegistry


@dataclass
class WorkerContext:
    """Settings, job store and engines of one worker process, and what queues a job's
    next chunk when one is recorded (None: nothing does, as in tests that run chunks
    without a broker)."""

    settings: Settings
    store: JobStore
    engines: EngineRegistry
    enqueuer: Enqueuer | None = None
    last_prune: float = field(default=0.0)

    @classmethod
    def build(cls, settings: Settings, enqueuer: Enqueuer | None = None) -> WorkerContext:
        return cls(
            settings=settings,
            store=make_job_store(settings),
            engines=EngineRegistry(settings.databases, limits=db_limits(settings)),
            enqueuer=enqueuer,
        )


def db_limits(settings: Settings) -> DbLimits:
    """The time bounds of the worker's database connections, from `settings`."""
    return DbLimits(
        statement_timeout_s=settings.db_statement_timeout_s,
        idle_in_transaction_timeout_s=settings.db_idle_in_transaction_timeout_s,
        tcp_user_timeout_s=settings.db_tcp_user_timeout_s,
        keepalives_idle_s=settings.db_keepalives_idle_s,
        keepalives_interval_s=settings.db_keepalives_interval_s,
        keepalives_count=settings.db_keepalives_count,
    )


class ContextHolder:
    """Builds the context lazily and anew in every forked child process."""

    def __init__(self, settings: Settings, enqueuer: Enqueuer | None = None) -> None:
        self._settings = settings
        self._enqueuer = enqueuer
        self._context: WorkerContext | None = None
        self._pid = 0

    def get(self) -> WorkerContext:
        if self._context is None or self._pid != os.getpid():
            self._context = WorkerContext.build(self._settings, self._enqueuer)
            self._pid = os.getpid()
        return self._context

    def reset(self) -> None:
        if self._context is not None and self._pid == os.getpid():
            self._context.engines.dispose()
        self._context = None
