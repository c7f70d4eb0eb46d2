"""A server process's start-up heap, kept out of the garbage collector's full passes.

Once started, an API or worker process holds about 150,000 objects the collector tracks
(modules, Celery, SQLAlchemy, pydantic, FastAPI), and they live as long as the process.
Every full collection walked all of them: 50-140 ms a pass on the bench's machine, once or
twice per 100,000 rows in each worker pool process, about a fifth of the pool's CPU (and
part of the API's during a big intake). `freeze_startup_heap` moves them to the permanent
generation (`gc.freeze`): never walked again and never collected. They are not garbage;
one that becomes garbage later is still freed when its last reference goes, but one left
in a reference cycle stays (the broker connection a reconnect replaces, say: a few
objects, once, not a growing leak). Whatever the process allocates afterwards (rows,
chunks, requests) is collected as before.

Called by the servers only (`claimpay api`, `claimpay worker`, and so `claimpay dev`),
once they are set up; `celery -A worker.celery_app worker` and a bare `uvicorn --factory
producer.main:create_app` run without it. A process that builds apps again and again, as
the tests do, must not call it.
"""

from __future__ import annotations

import gc
from typing import Any


def freeze_startup_heap(*_: Any, **__: Any) -> None:
    """Collect what start-up left as garbage, then freeze every object still tracked.
    Accepts and ignores any arguments, so that a signal or hook can call it as it is."""
    gc.collect()
    gc.freeze()
