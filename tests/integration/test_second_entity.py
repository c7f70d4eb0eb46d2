"""The engine is generic: PlaceCodes (a text key) goes through the same pipeline."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.integration.conftest import wait_for_job

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def place(code: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "place_Code": code,
        "all_Places": "N",
        "exclude_Proc_Auth": False,
        "description": f"Place of service {code}",
    }
    row.update(overrides)
    return row


def test_place_codes_batch_is_applied_with_per_row_results(
    client: TestClient, pg_engine: Engine, auth_headers: Callable[..., dict[str, str]]
) -> None:
    headers = auth_headers(database="acme")
    rows: list[Any] = [
        place("11", description="Office"),
        place("21", description="Inpatient hospital"),
        place("11", description="Office (renamed)", exclude_Proc_Auth=True),
        place("X" * 9),
        {"place_Code": 23},
        place("23", all_Places="YES"),
    ]
    accepted = client.put("/place-codes-batch", content=json.dumps(rows), headers=headers)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["data"]["jobId"]
    wait_for_job(client, job_id, headers)
    data = client.get(f"/jobs/{job_id}/results", headers=headers).json()["data"]
    assert [item["status"] for item in data] == [201, 201, 200, 400, 400, 400]
    assert [item["id"] for item in data][:3] == [
        [{"key": "place_Code", "value": "11"}],
        [{"key": "place_Code", "value": "21"}],
        [{"key": "place_Code", "value": "11"}],
    ]
    assert data[4]["id"] == [{"key": "place_Code", "value": None}]
    assert "place_Code" in data[3]["body"]
    assert "all_Places" in data[5]["body"]
    with pg_engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT place_code, description, exclude_proc_auth FROM place_codes "
                "WHERE place_code IN ('11', '21') ORDER BY place_code"
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        ("11", "Office (renamed)", True),
        ("21", "Inpatient hospital", False),
    ]
