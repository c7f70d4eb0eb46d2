"""A job the job store lost (Redis reset without persistence) answers 410, not 404."""

from __future__ import annotations

import json
from collections.abc import Callable

from claimpay import jobids
from tests.factories import make_rows
from tests.unit.producer.conftest import Api
from tests.unit.producer.test_batch_api import BATCH, assert_problem

Headers = Callable[..., dict[str, str]]


def accepted(api: Api, headers: dict[str, str]) -> str:
    response = api.client.put(BATCH, content=json.dumps(make_rows(3)), headers=headers)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["data"]["jobId"]
    return job_id


def test_a_job_lost_in_a_store_reset_is_gone_not_unknown(api: Api, auth_headers: Headers) -> None:
    job_id = accepted(api, auth_headers())
    api.store.redis.flushdb()  # Redis restarted without persistence
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results"):
        error = assert_problem(api.client.get(path, headers=auth_headers()), 410)
        assert error["type"].endswith("job-store-reset")
        assert "reset after this job was accepted" in error["detail"]
    # Still gone once the reset store has issued new jobs (under a new epoch)...
    later = accepted(api, auth_headers())
    assert jobids.epoch_of(later) != jobids.epoch_of(job_id)
    assert_problem(api.client.get(f"/jobs/{job_id}", headers=auth_headers()), 410)
    assert api.client.get(f"/jobs/{later}", headers=auth_headers()).status_code == 200


def test_a_mistyped_or_never_issued_id_is_still_404(api: Api, auth_headers: Headers) -> None:
    job_id = accepted(api, auth_headers())
    typo = job_id[:10] + ("0" if job_id[10] != "0" else "1") + job_id[11:]
    assert_problem(api.client.get(f"/jobs/{typo}", headers=auth_headers()), 404)
    api.store.redis.flushdb()
    assert_problem(api.client.get(f"/jobs/{'ab' * 16}", headers=auth_headers()), 404)
    assert_problem(api.client.get(f"/jobs/{typo}", headers=auth_headers()), 404)


def test_ids_check_their_deployment_and_epoch() -> None:
    job_id = jobids.new_job_id("0a1b2c3d", "claimpay")
    assert len(job_id) == 32
    assert jobids.epoch_of(job_id) == "0a1b2c3d"
    assert jobids.is_issued(job_id, "claimpay")
    assert not jobids.is_issued(job_id, "other-deployment")
    assert not jobids.is_issued(job_id.upper(), "claimpay")
