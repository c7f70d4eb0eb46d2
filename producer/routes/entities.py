"""`GET /<entity>` (paged) and `GET /<entity>/{key}`: read back rows, as the seed API does."""

from __future__ import annotations

import math
from typing import Annotated

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from claimpay.entities import EntitySpec
from claimpay.envelope import envelope
from claimpay.settings import Settings
from producer.auth import authorize_database
from producer.deps import CallerDep, RequiredDatabaseHeader, ServicesDep
from producer.errors import RowNotFound
from producer.problems import new_activity_id
from producer.readback import ReadBack, get_row, list_rows
from producer.responses import camel, readback_response


def entity_router(spec: EntitySpec, readback: ReadBack, settings: Settings) -> APIRouter:
    """The read routes of one entity; their page sizes come from `settings`."""
    router = APIRouter(tags=[spec.name])
    name = spec.row_model.__name__.removesuffix("In")

    @router.get(
        f"/{spec.name}",
        summary=f"List {name}, paged and sorted",
        operation_id=f"list{camel(spec.name)}",
        responses={200: readback_response(spec, paged=True)},
    )
    async def list_entity(
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: RequiredDatabaseHeader = None,
        page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
        page_size: int = Query(  # not Annotated: a string annotation cannot see `settings`
            settings.rows_page_size, alias="pageSize", ge=1, le=settings.rows_max_page_size
        ),
        sort_by: Annotated[
            str | None,
            Query(
                alias="sortBy",
                max_length=500,
                description="Fields by JSON name, each with `:asc` (default) or `:desc`, "
                "comma-separated: `tax_ID:desc,plan_ID`.",
            ),
        ] = None,
    ) -> Response:
        database = authorize_database(services.settings, caller, vbasoftware_database)
        total, rows = await anyio.to_thread.run_sync(
            list_rows, readback, database, spec, page, page_size, sort_by
        )
        pagination = {
            "TotalCount": total,
            "TotalPages": math.ceil(total / page_size),
            "CurrentPage": page,
            "PageSize": page_size,
        }
        return _json(rows, 200, {"x-pagination": orjson.dumps(pagination).decode()})

    async def get_entity(
        key: int | str,
        services: ServicesDep,
        caller: CallerDep,
        vbasoftware_database: RequiredDatabaseHeader = None,
    ) -> Response:
        database = authorize_database(services.settings, caller, vbasoftware_database)
        row = await anyio.to_thread.run_sync(get_row, readback, database, spec, key)
        if row is None:
            raise RowNotFound(f"No {name} with that key.")
        return _json(row, 200)

    get_entity.__annotations__["key"] = spec.key_type
    router.add_api_route(
        f"/{spec.name}/{{key}}",
        get_entity,
        methods=["GET"],
        summary=f"Get one {name}",
        operation_id=f"get{name}",
        responses={200: readback_response(spec, paged=False)},
    )
    return router


def _json(data: object, status: int, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(envelope(data, new_activity_id()), option=orjson.OPT_NAIVE_UTC)
    return Response(body, status, headers, media_type="application/json")
