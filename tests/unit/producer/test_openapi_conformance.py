"""schemathesis against the app's own OpenAPI document: over a thousand generated requests
across every operation, with valid credentials; never a 5xx, and every response (status,
media type, headers, body) is one the document declares, and sends no header it does not
declare."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.apidoc import undeclared_headers
from tests.credentials import PASSWORD, USER, basic, user_config
from tests.factories import make_rows
from tests.unit.producer.conftest import Api

Headers = Callable[..., dict[str, str]]
EXAMPLES_PER_OPERATION = 45
MIN_REQUESTS = 1_000


def only_declared_headers(ctx: Any, response: Any, case: Case[Any]) -> None:
    """Every header the answer sends is declared for its status (besides HTTP's own)."""
    definition = case.operation.responses.find_by_status_code(response.status_code)
    declared = [name for name, _ in definition.headers.items()] if definition is not None else []
    extra = undeclared_headers(declared, response.headers)
    assert not extra, f"{case.operation.label} {response.status_code}: undeclared {extra}"


CHECKS = [
    only_declared_headers,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _steer(case: Case[Any], job_ids: list[str], auth: dict[str, str]) -> dict[str, str]:
    """Point most generated requests at real databases, jobs and credentials, so they get
    past the 404s, 400s and 401s into the routes' real work (chosen from the case itself,
    so a failure reproduces); returns the credentials to send."""
    seed = zlib.crc32(repr((case.path_parameters, case.query, case.headers)).encode())
    if case.path_parameters and "job_id" in case.path_parameters and seed % 4:
        case.path_parameters["job_id"] = job_ids[seed % len(job_ids)]
    if case.headers is not None and "vbasoftware-database" in case.headers and seed % 3:
        case.headers["vbasoftware-database"] = ("demo", "acme")[seed % 2]
    if case.operation.path != "/user-authentication":
        return auth
    login = {"x-api-key": auth["x-api-key"]}
    if seed % 3:
        login["Authorization"] = basic(USER, PASSWORD if seed % 5 else "wrong")
    return login


def _seed_jobs(api: Api, auth_headers: Headers) -> list[str]:
    """A completed job, a queued one and an empty one, on both databases."""
    job_ids = []
    for database, rows in (("demo", make_rows(5)), ("acme", make_rows(3)), ("demo", [])):
        response = api.client.put(
            "/claim-prompt-pays-batch",
            json=rows,
            headers=auth_headers(database=database),
        )
        assert response.status_code == 202, response.text
        job_ids.append(response.json()["data"]["jobId"])
    api.run_queued()
    queued = api.client.put(
        "/claim-prompt-pays-batch", json=make_rows(2), headers=auth_headers()
    ).json()
    return [*job_ids, queued["data"]["jobId"]]


def test_generated_requests_get_documented_answers_and_no_5xx(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(rate_limit_per_s=0, max_active_jobs_per_key=0, users={USER: user_config()})
    job_ids = _seed_jobs(api, auth_headers)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    credentials = auth_headers(database=None)
    statuses: Counter[tuple[str, int]] = Counter()

    def exercise(operation: Any, mode: GenerationMode) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Case[Any]) -> None:
            response = case.call(headers=_steer(case, job_ids, credentials))
            case.validate_response(response, checks=CHECKS)
            statuses[(operation.label, response.status_code)] += 1

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters

    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) == len(list(schema.get_all_operations()))  # the document is valid
    for operation in operations:
        exercise(operation, GenerationMode.POSITIVE)
        exercise(operation, GenerationMode.NEGATIVE)
    assert sum(statuses.values()) >= MIN_REQUESTS, statuses
    assert {label for label, _ in statuses} == {op.label for op in operations}
    assert any(200 <= status < 300 for _, status in statuses), statuses
