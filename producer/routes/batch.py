"""`PUT /<entity>-batch`: accept a batch, store it, queue its chunks, answer 202 at once
(or 207 with every row's result when `Prefer: wait=N` is met)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from claimpay.entities import EntitySpec
from claimpay.envelope import envelope
from claimpay.jobs import JobMeta
from claimpay.settings import MAX_CHUNK_SIZE
from producer.auth import Caller, authorize_database
from producer.deps import CallerDep, RequiredDatabaseHeader, Services, ServicesDep
from producer.errors import IdempotencyKeyInUse, IdempotencyKeyReused
from producer.gatekeeper import GatekeeperDep, get_gatekeeper
from producer.idempotency import SEALED, IdempotencyKeys, IdempotencyRecord
from producer.limits import BodyTooLarge, IntakeLimits, check_batch_headers
from producer.preferences import preference_applied, preferred_wait_s, until_terminal
from producer.responses import (
    LOCATION,
    PREFERENCE_APPLIED,
    JobAcceptedEnvelope,
    ResultsEnvelope,
    camel,
    documented_problem,
    documented_problems,
    header,
)
from producer.results import results_response
from producer.submission import BatchOptions, store_batch

log = logging.getLogger("claimpay.producer")


def batch_router(spec: EntitySpec) -> APIRouter:
    """The batch route of one entity, with its row schema in the OpenAPI document."""
    router = APIRouter(tags=[spec.name])
    row_schema = {"$ref": f"#/components/schemas/{spec.row_model.__name__}"}

    @router.put(
        spec.batch_path,
        status_code=202,
        operation_id=f"submit{camel(spec.name)}Batch",
        summary=f"Create or update a batch of {spec.row_model.__name__.removesuffix('In')}",
        description="Stores the batch and answers at once with the job (202); workers apply "
        "the rows. Poll `GET /jobs/{jobId}` (or send `Prefer: wait=N` there), then read "
        "`GET /jobs/{jobId}/results`: one result per row, in input order. With `Prefer: "
        "wait=N` here, a job that ends within N seconds answers 207 with every result, as "
        "the synchronous API does. An empty array `[]` is accepted: a job with no rows, "
        "`completed` at once.",
        responses={
            202: {
                "model": JobAcceptedEnvelope,
                "description": "The batch is stored and will be applied; poll the job.",
                "headers": {"Location": LOCATION, "Preference-Applied": PREFERENCE_APPLIED},
            },
            207: {
                "model": ResultsEnvelope,
                "description": "`Prefer: wait=N` was met: one result per row, in order.",
                "headers": {
                    "Location": LOCATION,
                    "Preference-Applied": header("`wait=N`, the wait honoured.", required=True),
                },
            },
            **documented_problems(400, 401, 403, 413, 415, 429),
            409: {
                **documented_problem(
                    409, "A request with the same Idempotency-Key is still being received."
                ),
                "headers": {"Location": LOCATION},
            },
            422: {
                **documented_problem(422, "The Idempotency-Key was used with another body."),
                "headers": {"Location": LOCATION},
            },
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The rows, a JSON array (`application/json`, UTF-8).",
                "content": {"application/json": {"schema": {"type": "array", "items": row_schema}}},
            }
        },
    )
    async def submit_batch(
        request: Request,
        services: ServicesDep,
        caller: CallerDep,
        gatekeeper: GatekeeperDep,
        vbasoftware_database: RequiredDatabaseHeader = None,
        dry_run: Annotated[
            bool,
            Query(
                alias="dryRun",
                description="Check and rehearse every row in a transaction that is rolled "
                "back: results say `201 Would create`, `200 Would update` or the row's 4xx; "
                "nothing is written.",
            ),
        ] = False,
        callback_url: Annotated[
            str | None,
            Query(
                alias="callbackUrl",
                max_length=2048,
                description="An http(s) URL the job's status is POSTed to when it ends, "
                "signed with `X-Claimpay-Signature` (needs `CLAIMPAY_WEBHOOK_SECRET`; "
                "400 otherwise, or for a host not in `CLAIMPAY_WEBHOOK_ALLOWED_HOSTS`).",
            ),
        ] = None,
        chunk_size: Annotated[
            int | None,
            Query(
                alias="chunkSize",
                ge=1,
                le=MAX_CHUNK_SIZE,
                description="Rows per chunk task (default `CLAIMPAY_CHUNK_SIZE`).",
            ),
        ] = None,
        prefer: Annotated[
            str | None,
            Header(
                description="`wait=N` (RFC 7240): answer 207 with every result if the job "
                "ends within N seconds (at most `CLAIMPAY_MAX_WAIT_S`), else the usual 202; "
                "`Preference-Applied` says the wait was honoured."
            ),
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=255,
                description="Send a batch again with the same key (and body) and get the "
                "same job back instead of a second one (for `CLAIMPAY_IDEMPOTENCY_TTL_S`, "
                "per API key and database); another body: 422; while the first request is "
                "still being received: 409. Both name the job in `Location`.",
            ),
        ] = None,
    ) -> Response:
        database = authorize_database(services.settings, caller, vbasoftware_database)
        check_batch_headers(request, IntakeLimits.of(services.settings))  # 415, 413
        options = BatchOptions.checked(services.settings, dry_run, callback_url, chunk_size)
        wait_s = preferred_wait_s(prefer, services.settings.max_wait_s)
        job_id = await anyio.to_thread.run_sync(services.store.new_job_id)
        if idempotency_key:
            meta = await _idempotent_submit(
                request, services, spec, caller, database, options, idempotency_key, job_id
            )
        else:
            # 429 while the key has too many unfinished jobs
            await anyio.to_thread.run_sync(gatekeeper.admit_job, caller, job_id)
            try:
                meta = await store_batch(
                    request.stream(), services, spec, job_id, database, caller.user, options
                )
            except BaseException:
                await anyio.to_thread.run_sync(gatekeeper.release_job, caller, job_id)
                raise
        return await _answer(services, meta, wait_s, request.is_disconnected)

    return router


async def _idempotent_submit(
    request: Request,
    services: Services,
    spec: EntitySpec,
    caller: Caller,
    database: str,
    options: BatchOptions,
    idempotency_key: str,
    job_id: str,
) -> JobMeta:
    settings = services.settings
    keys = IdempotencyKeys(
        services.store.redis,
        services.store.store_keys,
        settings.idempotency_ttl_s,
        settings.idempotency_claim_ttl_s,
    )
    record_key = keys.key(caller.key_id, database, idempotency_key)
    earlier = await anyio.to_thread.run_sync(keys.claim, record_key, job_id)
    if earlier is not None:
        return await _replay(request, services, earlier, _fingerprint(spec, options))
    digest = _fingerprint(spec, options)
    try:
        # Only a new job counts against the key's limit of unfinished jobs (not a replay).
        await anyio.to_thread.run_sync(get_gatekeeper(request).admit_job, caller, job_id)
        meta = await store_batch(
            _hashing(
                request.stream(),
                digest,
                lambda: keys.refresh(record_key),
                refresh_s=settings.idempotency_claim_ttl_s / 3,
            ),
            services,
            spec,
            job_id,
            database,
            caller.user,
            options,
        )
    except BaseException:
        await anyio.to_thread.run_sync(keys.release, record_key)
        await anyio.to_thread.run_sync(get_gatekeeper(request).release_job, caller, job_id)
        raise
    await anyio.to_thread.run_sync(keys.complete, record_key, digest.hexdigest())
    return meta


def _fingerprint(spec: EntitySpec, options: BatchOptions) -> Any:
    """A hash seeded with what besides the body decides the job: same key, same job."""
    seed = [spec.name, options.dry_run, options.callback_url, options.chunk_size]
    return hashlib.sha256(orjson.dumps(seed))


async def _replay(
    request: Request, services: Services, earlier: IdempotencyRecord, digest: Any
) -> JobMeta:
    if earlier.state != SEALED:
        raise IdempotencyKeyInUse(
            f"A request with this Idempotency-Key is still running: job {earlier.job_id}.",
            job_id=earlier.job_id,
        )
    received = 0
    async for data in request.stream():
        received += len(data)
        if received > services.settings.max_body_bytes:
            raise BodyTooLarge("The body is too large.")
        digest.update(data)
    meta = await anyio.to_thread.run_sync(services.store.meta, earlier.job_id)
    if digest.hexdigest() != earlier.body_sha256 or meta is None:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body.",
            job_id=earlier.job_id,
        )
    return meta


async def _hashing(
    body: AsyncIterator[bytes], digest: Any, keep_claim: Callable[[], None], refresh_s: float
) -> AsyncIterator[bytes]:
    """Hash the body as it streams by, and keep the key's claim alive meanwhile (every
    `refresh_s`)."""
    last = anyio.current_time()
    async for data in body:
        digest.update(data)
        if anyio.current_time() - last > refresh_s:
            await anyio.to_thread.run_sync(keep_claim)
            last = anyio.current_time()
        yield data


async def _answer(
    services: Services,
    meta: JobMeta,
    wait_s: float,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> Response:
    """207 with every result if the job finishes within `wait_s`, else 202."""
    meta = await until_terminal(services.store, meta, wait_s, gone, services.ends)
    headers = {"Location": f"/jobs/{meta.job_id}", **preference_applied(wait_s)}
    if wait_s and meta.state.terminal:
        response = results_response(services.store, meta)
        response.headers.update(headers)
        return response
    data = {
        "jobId": meta.job_id,
        "state": meta.state.value,
        "total": meta.total,
        "statusUrl": f"/jobs/{meta.job_id}",
        "resultsUrl": f"/jobs/{meta.job_id}/results",
    }
    return Response(
        orjson.dumps(envelope(data, meta.job_id)), 202, headers, media_type="application/json"
    )
