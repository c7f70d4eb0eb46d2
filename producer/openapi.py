"""The OpenAPI document, with each entity's row schema (the batch body is parsed by hand)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from claimpay.entities import ENTITIES
from producer.responses import complete_openapi


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for spec in ENTITIES.values():
                components[spec.row_model.__name__] = spec.row_model.model_json_schema(
                    by_alias=True, ref_template="#/components/schemas/{model}"
                )
            app.openapi_schema = complete_openapi(schema)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
