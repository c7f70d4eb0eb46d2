"""Health probes: liveness (the process answers) and readiness (its dependencies do)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from claimpay.envelope import envelope
from producer.problems import PROBLEM_BASE, request_activity_id
from producer.readiness import Readiness
from producer.responses import Liveness, ReadinessEnvelope

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="The API process is up", operation_id="live", response_model=Liveness)
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Redis and every configured database answer, with the expected schema "
    "(in production, `warnings` also names a Redis that persists nothing)",
    operation_id="ready",
    responses={
        200: {"model": ReadinessEnvelope, "description": "Ready: every check passed."},
        503: {
            "model": ReadinessEnvelope,
            "description": "Not ready: `error.detail` names each failed check.",
        },
    },
)
async def ready(request: Request) -> Response:
    """Unauthenticated, so cheap whatever the number of callers: the answer is computed by
    one caller at a time and reused briefly (`CLAIMPAY_READINESS_CACHE_S`)."""
    readiness: Readiness = request.app.state.readiness
    results = await readiness.results()
    data: dict[str, Any] = {
        "status": "ready" if all(r.ok for r in results) else "not-ready",
        "checks": {r.name: r.public() for r in results},
    }
    warnings = [f"{r.name}: {r.warning}" for r in results if r.warning]
    if warnings:
        data["warnings"] = warnings
    failed = [r for r in results if not r.ok]
    error = None
    if failed:
        error = {
            "type": PROBLEM_BASE + "not-ready",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "; ".join(f"{r.name}: {r.detail}" for r in failed),
            "instance": request.url.path,
        }
    body = envelope(data, request_activity_id(), error=error)
    return Response(
        orjson.dumps(body), status_code=503 if failed else 200, media_type="application/json"
    )
