"""The OpenAPI document (`/openapi.json`, shown by `/docs` and `/redoc`).

Routes write their bodies themselves, so FastAPI cannot infer what they answer: the route
decorators declare each answer (status, body model, headers), and this module adds what
is common to many routes or known only here: each entity's row schemas and an example
batch that is applied as is, both security schemes together, the problem envelope of
every 4xx/5xx with its headers, and the parameters declared required.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from claimpay.entities import ENTITIES, EntitySpec
from producer.auth import DATABASE_HEADER
from producer.deps import REQUIRED_MARK
from producer.responses import (
    AUTHENTICATED_PROBLEM_HEADERS,
    AUTHENTICATED_PROBLEMS,
    PROBLEM_DESCRIPTIONS,
    PROBLEM_HEADERS,
    problem_schema,
    readback_names,
)

API_DESCRIPTION = """\
Asynchronous batch upserts with a per-row result for every row.

**The loop.** `PUT /claim-prompt-pays-batch` stores the rows and answers **202** at once with
the job (`Location: /jobs/{jobId}`); workers apply the rows. `GET /jobs/{jobId}` tells the
job's state (with `Prefer: wait=N`, once it has ended or after N seconds); `GET
/jobs/{jobId}/results` answers **207** with the seed API's envelope, one result per row in
input order (or **200** with CSV or NDJSON, by `Accept`). `POST /jobs/{jobId}/retry` runs
failed rows again; `DELETE /jobs/{jobId}` cancels.

**Job states**: `receiving` (rows still arriving), `queued`, `running`, `cancelling`,
`completed`, `cancelled`; the last two are final.

**Authentication**: every call needs both the `x-api-key` header and `Authorization:
Bearer <JWT>` (from `POST /user-authentication`, or `claimpay token`); health probes and
metrics need neither. Batch and read-back calls name their database in
`vbasoftware-database`.

**Errors**: a request-level problem is `{data: null, error: {type, title, status, detail,
instance}, debug: {activityID}}` (RFC 7807 inside the envelope); a row's problem is that
row's `status` and `body` in the results.
"""

BATCH_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "claim-prompt-pays": [
        {
            "claimPromptPay_Key": 1001,
            "group_ID": "GRP001",
            "division_ID": "DIV01",
            "plan_ID": "PPO",
            "prompt_Pay_Duration": 30,
            "prompt_Pay_Duration_Type": "D",
            "tax_ID": "123456789",
        },
        {
            "claimPromptPay_Key": 1002,
            "group_ID": "GRP001",
            "plan_ID": "HMO",
            "prompt_Pay_Duration": 1,
            "prompt_Pay_Duration_Type": "M",
            "tax_ID": "987654321",
            "entry_Date": "2026-01-15T09:30:00Z",
            "entry_User": "loader",
        },
    ],
    "place-codes": [
        {
            "place_Code": "11",
            "all_Places": "N",
            "exclude_Proc_Auth": False,
            "description": "Office",
        },
        {
            "place_Code": "21",
            "all_Places": "N",
            "exclude_Proc_Auth": False,
            "description": "Inpatient Hospital",
        },
    ],
}
"""The request example of each batch route: valid rows, sent as is they are applied (201
on a database that does not hold their keys yet)."""


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for spec in ENTITIES.values():
                _add_entity(schema, components, spec)
            app.openapi_schema = complete_openapi(schema)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _add_entity(schema: dict[str, Any], components: dict[str, Any], spec: EntitySpec) -> None:
    """The row schema (as received), the stored row and its envelopes (as read back), and
    the example of the batch route."""
    row = spec.row_model.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    components[spec.row_model.__name__] = row
    stored, one, page = readback_names(spec)
    components[stored] = {
        **copy.deepcopy(row),
        "title": stored,
        "description": "A stored row: every field, as the batch calls set it.",
        "required": list(row["properties"]),
    }
    debug = {"$ref": "#/components/schemas/Debug"}
    stored_ref = {"$ref": f"#/components/schemas/{stored}"}
    for name, data in ((one, stored_ref), (page, {"type": "array", "items": stored_ref})):
        components[name] = {
            "type": "object",
            "title": name,
            "required": ["data", "error", "debug"],
            "properties": {"data": data, "error": {"type": "null"}, "debug": debug},
        }
    body = schema["paths"][spec.batch_path]["put"]["requestBody"]["content"]["application/json"]
    body["example"] = BATCH_EXAMPLES[spec.name]


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the document say what the app does for every route:

    - an operation needs *both* its security schemes (FastAPI lists them as alternatives);
    - a parameter marked `REQUIRED_MARK` is required;
    - request validation errors are 400 problems, never FastAPI's 422 error list;
    - every 4xx/5xx is a problem envelope, and every route declares 500, every
      authenticated one also 400, 401, 429 and 503, every one with a path parameter 404
      (its resource may not exist, or belong to another tenant), every job route 410 (a
      job the job store lost), every one requiring the database header 403 (the job
      routes answer a foreign job with 404); 401 declares its `WWW-Authenticate`, the 429
      and 503 of authenticated routes their `Retry-After`.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ProblemEnvelope", problem_schema(components))
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            _complete_operation(operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _complete_operation(operation: dict[str, Any]) -> None:
    security = operation.get("security")
    if security and len(security) > 1:
        operation["security"] = [{name: [] for req in security for name in req}]
    parameters = operation.get("parameters", [])
    for parameter in parameters:
        if parameter.get("schema", {}).pop(REQUIRED_MARK, False):
            parameter["required"] = True
            _not_null(parameter["schema"])
    responses: dict[str, Any] = operation.setdefault("responses", {})
    validation = responses.get("422", {}).get("content", {}).get("application/json", {})
    if validation.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    wanted = AUTHENTICATED_PROBLEMS if security else (500,)
    if any(p.get("in") == "path" for p in parameters):
        wanted = (*wanted, 404)
    if any(p.get("in") == "path" and p.get("name") == "job_id" for p in parameters):
        wanted = (*wanted, 410)  # a job the job store lost (see `claimpay.jobids`)
    if any(p.get("name") == DATABASE_HEADER and p.get("required") for p in parameters):
        wanted = (*wanted, 403)
    for wanted_status in wanted:
        description = PROBLEM_DESCRIPTIONS[wanted_status]
        responses.setdefault(str(wanted_status), {"description": description})
    headers = {**PROBLEM_HEADERS, **(AUTHENTICATED_PROBLEM_HEADERS if security else {})}
    for status, response in responses.items():
        if status[:1] not in ("4", "5"):
            continue
        if "content" not in response:
            response["content"] = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ProblemEnvelope"}}
            }
        for name, declared in headers.get(int(status), {}).items():
            response.setdefault("headers", {}).setdefault(name, declared)


def _not_null(schema: dict[str, Any]) -> None:
    """A required parameter's schema without its `null` alternative (`str | None` in the
    route, which checks the presence itself)."""
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        del schema["anyOf"]
        schema.update(options[0])
