"""What operators get from the API: `/metrics`, the readiness checks of `/health/ready`,
request logs and metrics."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from claimpay.jobstore import JobStore
from claimpay.messaging import worker_queues
from claimpay.settings import Settings
from producer.metrics import build_telemetry
from producer.middleware import RequestTelemetry
from producer.readiness import Readiness, persistence_warning, probe_redis
from producer.routes import metrics


def install_operations(
    app: FastAPI, settings: Settings, store: JobStore, *, own_redis: bool
) -> None:
    """Add `/metrics`, the readiness checks and the request middleware to `app`.

    `own_redis`: the store was built from `settings` (not handed in), so readiness and the
    scrape-time metrics read Redis with a client of their own, with short timeouts and no
    retries: they must answer at once while Redis is down."""
    if own_redis:
        probe = probe_redis(settings.require_redis_url(), settings.readiness_timeout_s)
    else:
        probe = store.redis
    telemetry = build_telemetry(probe, store.store_keys, worker_queues(settings))
    app.state.telemetry = telemetry
    readiness = Readiness(settings, probe.ping, partial(persistence_warning, probe))
    app.state.readiness = readiness
    app.router.on_shutdown.append(readiness.dispose)
    app.add_middleware(RequestTelemetry, metrics=telemetry.api)
    app.include_router(metrics.router)
