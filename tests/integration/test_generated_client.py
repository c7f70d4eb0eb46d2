"""A client generated from the live `/openapi.json` by `openapi-python-client` (the
installed generator, offline) runs the loop with typed models: submit, poll, results,
retry, listing and read-back, against a real `claimpay api` and Celery worker, with both
credentials (API key and bearer token)."""

from __future__ import annotations

import importlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from producer.tokens import mint_token
from tests.apidoc import check_answer
from tests.factories import API_KEY, JWT_SECRET, make_row
from tests.integration.api_process import ApiProcess, running_api
from tests.integration.conftest import WorkerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PACKAGE = "claimpay_generated"
CONFIG = f"post_hooks: []\npackage_name_override: {PACKAGE}\n"
"""No post-generation hooks (formatters): the test needs the generator alone."""


@pytest.fixture(scope="module")
def api(
    stack_env: dict[str, str],
    worker_process: WorkerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiProcess]:
    with running_api(stack_env, tmp_path_factory.mktemp("api") / "api.log") as running:
        yield running


@pytest.fixture(scope="module")
def document(api: ApiProcess) -> dict[str, Any]:
    loaded: dict[str, Any] = httpx.get(f"{api.base_url}/openapi.json", timeout=10).json()
    return loaded


@pytest.fixture(scope="module")
def generated(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated package, in a temporary directory on `sys.path` while the tests run."""
    where = tmp_path_factory.mktemp("generated")
    (where / "openapi.json").write_text(json.dumps(document))
    (where / "config.yaml").write_text(CONFIG)
    argv = [sys.executable, "-m", "openapi_python_client", "generate", "--meta", "none",
            "--path", str(where / "openapi.json"), "--config", str(where / "config.yaml"),
            "--output-path", str(where / PACKAGE), "--fail-on-warning"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(where))
    try:
        yield where
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def module(name: str) -> Any:
    found: ModuleType = importlib.import_module(f"{PACKAGE}.{name}")
    return found


def test_a_generated_client_runs_the_job_loop_with_typed_models(
    api: ApiProcess, document: dict[str, Any], generated: Path
) -> None:
    client = module("client").AuthenticatedClient(
        base_url=api.base_url,
        token=mint_token(JWT_SECRET, "generated", 600),
        headers={"x-api-key": API_KEY},
        raise_on_unexpected_status=True,  # an undeclared status raises
    )
    first = 600_000_000 + secrets.randbelow(10**6) * 10
    with client:
        job_id = submit_and_poll(client, document, first)
        read_the_results(client, document, job_id, first)


def declared(document: dict[str, Any], response: Any, method: str, path: str) -> Any:
    """The parsed body of an answer whose status, media type and headers are declared."""
    media = response.headers.get("content-type")
    check_answer(document, method, path, response.status_code, response.headers, media)
    return response.parsed


def submit_and_poll(client: Any, document: dict[str, Any], first: int) -> str:
    models = module("models")
    submit = module("api.claim_prompt_pays.submit_claim_prompt_pays_batch")
    get_job = module("api.jobs.get_job")
    sent = [make_row(first), make_row(first + 1), make_row(first, plan_ID="HMO")]
    accepted = submit.sync_detailed(
        client=client,
        body=[models.ClaimPromptPayIn.from_dict(row) for row in sent],
        vbasoftware_database="acme",
    )
    assert accepted.status_code == 202
    job = declared(document, accepted, "PUT", "/claim-prompt-pays-batch").data
    assert isinstance(job, models.JobAccepted)
    assert accepted.headers["location"] == f"/jobs/{job.job_id}" == job.status_url
    deadline = time.monotonic() + 60
    while True:
        polled = get_job.sync_detailed(job.job_id, client=client, prefer="wait=10")
        status = declared(document, polled, "GET", "/jobs/{job_id}").data
        if status.state == models.JobState.COMPLETED:
            break
        assert time.monotonic() < deadline, "the job did not complete"
    assert (status.created, status.updated, status.failed, status.retries) == (2, 1, 0, 0)
    assert isinstance(status.submitted_at, datetime)
    assert isinstance(status.finished_at, datetime)
    assert status.dry_run is False
    job_id: str = job.job_id
    return job_id


def read_the_results(client: Any, document: dict[str, Any], job_id: str, first: int) -> None:
    models = module("models")
    get_results, retry_job = module("api.jobs.get_job_results"), module("api.jobs.retry_job")
    list_jobs = module("api.jobs.list_jobs")
    get_row = module("api.claim_prompt_pays.get_claim_prompt_pay")
    answered = get_results.sync_detailed(job_id, client=client)
    assert answered.status_code == 207
    results = declared(document, answered, "GET", "/jobs/{job_id}/results")
    assert isinstance(results, models.ResultsEnvelope)
    assert [(r.id[0].value, r.status, r.body) for r in results.data] == [
        (first, 201, "Created"),
        (first + 1, 201, "Created"),
        (first, 200, "Updated"),
    ]
    as_csv = get_results.sync_detailed(job_id, client=client, accept="text/csv")
    assert as_csv.status_code == 200
    assert declared(document, as_csv, "GET", "/jobs/{job_id}/results").count("Created") == 2
    nothing = retry_job.sync_detailed(job_id, client=client)
    assert nothing.status_code == 200
    assert declared(document, nothing, "POST", "/jobs/{job_id}/retry").data.retried_rows == 0
    listed = list_jobs.sync_detailed(client=client, vbasoftware_database="acme")
    jobs = declared(document, listed, "GET", "/jobs").data
    assert job_id in [item.job_id for item in jobs]
    assert json.loads(listed.headers["x-pagination"])["CurrentPage"] == 1
    stored = get_row.sync_detailed(first, client=client, vbasoftware_database="acme")
    assert declared(document, stored, "GET", "/claim-prompt-pays/{key}").data.plan_id == "HMO"


def test_the_generated_client_needs_both_credentials(api: ApiProcess, generated: Path) -> None:
    models, get_job, client_module = module("models"), module("api.jobs.get_job"), module("client")
    job_id = "0" * 32
    key_only = client_module.Client(base_url=api.base_url, headers={"x-api-key": API_KEY})
    token_only = client_module.AuthenticatedClient(
        base_url=api.base_url, token=mint_token(JWT_SECRET, "generated", 600)
    )
    both = client_module.AuthenticatedClient(
        base_url=api.base_url,
        token=mint_token(JWT_SECRET, "generated", 600),
        headers={"x-api-key": API_KEY},
    )
    for client in (key_only, token_only):
        with client:
            refused = get_job.sync_detailed(job_id, client=client)
        assert refused.status_code == 401
        assert isinstance(refused.parsed, models.ProblemEnvelope)
    with both:
        unknown = get_job.sync_detailed(job_id, client=both)
    assert unknown.status_code == 404  # authenticated: the job just does not exist
    assert unknown.parsed.error.type_.endswith("job-not-found")  # `type` is a builtin
