"""`PUT /<entity>-batch`: accept a batch, store it, queue its chunks, answer 202 at once."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from claimpay.entities import EntitySpec
from claimpay.envelope import envelope
from producer.auth import authorize_database
from producer.deps import CallerDep, DatabaseHeader, Services, ServicesDep
from producer.intake import ChunkPlanner, MalformedBody, receive_array
from producer.problems import Problem, new_activity_id

log = logging.getLogger("claimpay.producer")


def batch_router(spec: EntitySpec) -> APIRouter:
    """The batch route of one entity, with its row schema in the OpenAPI document."""
    router = APIRouter(tags=[spec.name])
    row_schema = {"$ref": f"#/components/schemas/{spec.row_model.__name__}"}

    @router.put(
        spec.batch_path,
        status_code=202,
        summary=f"Create or update a batch of {spec.row_model.__name__.removesuffix('In')}",
        responses={
            202: {"description": "The batch is stored and will be applied; poll the job."},
            400: {"description": "Missing database header or malformed body."},
            401: {"description": "Missing or invalid API key or bearer token."},
            403: {"description": "The API key may not use that database."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "array", "items": row_schema}}},
            }
        },
    )
    async def submit_batch(
        request: Request,
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: DatabaseHeader = None,
    ) -> Response:
        database = authorize_database(services.settings, caller, vbasoftware_database)
        job_id = new_activity_id()
        meta = await _store_batch(request, services, spec, job_id, database, caller.user)
        data = {
            "jobId": job_id,
            "state": meta["state"],
            "total": meta["total"],
            "statusUrl": f"/jobs/{job_id}",
            "resultsUrl": f"/jobs/{job_id}/results",
        }
        log.info("job %s accepted: %d rows for %s", job_id, meta["total"], database)
        return Response(
            orjson.dumps(envelope(data, job_id)),
            status_code=202,
            media_type="application/json",
            headers={"Location": f"/jobs/{job_id}"},
        )

    return router


async def _store_batch(
    request: Request,
    services: Services,
    spec: EntitySpec,
    job_id: str,
    database: str,
    user: str,
) -> dict[str, Any]:
    store = services.store
    planner = ChunkPlanner(services.settings.chunk_size)
    await anyio.to_thread.run_sync(
        partial(
            store.begin,
            job_id,
            entity=spec.name,
            database=database,
            user=user,
            chunk_size=planner.size,
        )
    )
    try:
        total = await receive_array(
            request.stream(),
            spec,
            planner,
            partial(store.write_rows, job_id),
            buffer_bytes=services.settings.intake_buffer_bytes,
        )
        chunks = planner.chunks()
        meta = await anyio.to_thread.run_sync(
            partial(store.seal, job_id, total=total, chunk_nos=[c for c, _ in chunks])
        )
        if chunks:
            await anyio.to_thread.run_sync(
                services.enqueuer.enqueue_chunks,
                job_id,
                [c for c, _ in chunks],
                [n for _, n in chunks],
            )
    except MalformedBody as exc:
        await anyio.to_thread.run_sync(store.discard, job_id, list(planner.rows_per_chunk))
        raise Problem(400, "malformed-body", "Bad Request", str(exc), activity_id=job_id) from exc
    except Exception:
        await anyio.to_thread.run_sync(store.discard, job_id, list(planner.rows_per_chunk))
        raise
    return {"state": meta.state.value, "total": total}
