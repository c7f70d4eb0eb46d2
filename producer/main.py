"""Builds the FastAPI app: `create_app(settings)`; `uvicorn --factory producer.main:create_app`
(`claimpay api` serves `create_server_app`)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from claimpay import __version__
from claimpay.connections import make_job_store
from claimpay.entities import ENTITIES
from claimpay.heap import freeze_startup_heap
from claimpay.jobstore import JobStore
from claimpay.messaging import CeleryEnqueuer, Enqueuer, make_celery
from claimpay.settings import Settings, get_settings
from producer.deps import Services
from producer.gatekeeper import Gatekeeper
from producer.jobends import JobEnds
from producer.openapi import API_DESCRIPTION, install_openapi
from producer.operations import install_operations
from producer.problems import install_problem_handlers
from producer.querystring import DropEmptyQueryParameters
from producer.readback import ReadBack
from producer.routes import health, jobs, listing, users
from producer.routes.batch import batch_router
from producer.routes.entities import entity_router
from producer.slowclients import SlowClientGuard

log = logging.getLogger("claimpay.producer")


def create_server_app() -> FastAPI:
    """`create_app` as `claimpay api` serves it: each server process freezes its start-up
    heap once the app has started (`claimpay.heap`)."""
    app = create_app()
    app.router.on_startup.append(freeze_startup_heap)
    return app


def create_app(
    settings: Settings | None = None,
    store: JobStore | None = None,
    enqueuer: Enqueuer | None = None,
) -> FastAPI:
    """The API for `settings` (default: environment); `store` and `enqueuer` may be swapped."""
    settings = settings or get_settings()
    # /docs and /redoc load their scripts and styles from the API itself (no CDN): they
    # work on closed networks. No validator badge: it would call a public validator.
    app = FastAPIOffline(
        title="claimpay",
        version=__version__,
        description=API_DESCRIPTION,
        swagger_ui_parameters={"validatorUrl": None},
    )
    own_redis = store is None
    store = store or make_job_store(settings)
    app.state.services = Services(
        settings=settings,
        store=store,
        enqueuer=enqueuer or CeleryEnqueuer(make_celery(settings), settings.queue),
        ends=JobEnds(store),
    )
    app.router.on_shutdown.append(app.state.services.ends.close)
    # Refuses to start without the keys its token policy needs (RuntimeError).
    app.state.gatekeeper = Gatekeeper.build(settings, app.state.services.store)
    install_problem_handlers(app, store_retry_after_s=settings.retry_after_s)
    readback = ReadBack(settings.databases, settings.db_statement_timeout_s)
    app.router.on_shutdown.append(readback.dispose)
    app.router.on_shutdown.append(app.state.gatekeeper.login_gate.close)
    for spec in ENTITIES.values():
        app.include_router(batch_router(spec))
        app.include_router(entity_router(spec, readback, settings))
    app.include_router(jobs.jobs_router(settings))
    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(listing.listing_router(settings))
    # Inside the request telemetry (added next): its 408s and 431s are counted and logged.
    app.add_middleware(
        SlowClientGuard,
        max_headers=settings.max_headers,
        max_header_bytes=settings.max_header_bytes,
        body_idle_timeout_s=settings.body_idle_timeout_s,
        body_min_bytes_per_s=settings.body_min_bytes_per_s,
    )
    install_operations(app, settings, store, own_redis=own_redis)
    app.add_middleware(DropEmptyQueryParameters)
    install_openapi(app)
    return app
