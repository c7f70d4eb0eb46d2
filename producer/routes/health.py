"""Health probes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="The API process is up")
def live() -> dict[str, str]:
    return {"status": "ok"}
