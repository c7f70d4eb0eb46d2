"""Jobs take turns on the real worker: with a dispatch window (`job_window_chunks`) a
small job sent just after a big one finishes first; with every chunk queued at once
(window 0), it waits for the big job's last chunk."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from producer.main import create_app
from tests.factories import make_rows
from tests.integration.conftest import WorkerProcess, stack_settings, wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

Headers = Callable[..., dict[str, str]]
BATCH = "/claim-prompt-pays-batch"
CHUNK_ROWS = 20
BIG_CHUNKS, SMALL_CHUNKS = 30, 6


@pytest.mark.parametrize(("window", "small_first"), [(2, True), (0, False)])
def test_a_small_job_sent_after_a_big_one(
    stack_env: dict[str, str],
    worker_process: WorkerProcess,
    auth_headers: Headers,
    window: int,
    small_first: bool,
) -> None:
    settings = stack_settings(stack_env).model_copy(update={"job_window_chunks": window})
    headers = auth_headers(database="acme", user="ops")
    first_key = 7_000_000 + window * 100_000
    big = make_rows(BIG_CHUNKS * CHUNK_ROWS, first_key=first_key)
    small = make_rows(SMALL_CHUNKS * CHUNK_ROWS, first_key=first_key + 50_000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        ids = []
        for rows in (big, small):
            accepted = api.put(
                f"{BATCH}?chunkSize={CHUNK_ROWS}", content=json.dumps(rows), headers=headers
            )
            assert accepted.status_code == 202, accepted.text
            ids.append(accepted.json()["data"]["jobId"])
        big_job, small_job = (wait_for_job(api, job_id, headers) for job_id in ids)
    for job, rows in ((big_job, big), (small_job, small)):
        assert (job["processed"], job["created"], job["failed"]) == (len(rows), len(rows), 0)
    assert (big_job["chunks"], small_job["chunks"]) == (BIG_CHUNKS, SMALL_CHUNKS)
    finished = {
        name: datetime.fromisoformat(job["finishedAt"])
        for name, job in (("big", big_job), ("small", small_job))
    }
    assert (finished["small"] < finished["big"]) is small_first, finished
