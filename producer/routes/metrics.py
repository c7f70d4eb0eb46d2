"""`GET /metrics`: Prometheus exposition of the API and of the deployment (see
`producer.metrics`). Unauthenticated, like the health probes: it carries no row data,
no keys and no job IDs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from producer.metrics import METRICS_CONTENT_TYPE, Telemetry

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request) -> Response:
    telemetry: Telemetry = request.app.state.telemetry
    return Response(telemetry.exposition(), media_type=METRICS_CONTENT_TYPE)
