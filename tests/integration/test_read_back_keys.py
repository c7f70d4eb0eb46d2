"""Read-back never answers with a database error: a key no row can have (beyond the 32-bit
column, longer than the text column, a NUL PostgreSQL cannot store) is 404, a malformed one
400, on PostgreSQL and on SQLite alike; odd query parameters are 400, never 500.

The API runs in-process on the real Redis with one PostgreSQL and one SQLite database (no
worker: rows are written directly)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from producer.main import create_app
from tests.integration.batches import Headers
from tests.integration.conftest import stack_settings
from worker.migrate import upgrade

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

DATABASES = ("acme", "demo")  # PostgreSQL, SQLite
EDGE_KEYS = (2**31 - 1, -(2**31))
INSERT_CLAIM = (
    "INSERT INTO claim_prompt_pay (claim_prompt_pay_key, entry_date, update_date) "
    "VALUES (:key, '2026-01-01', '2026-01-01')"
)
INSERT_PLACE = (
    "INSERT INTO place_codes (place_code, all_places, exclude_proc_auth, entry_date, "
    "update_date) VALUES (:code, 'Y', false, '2026-01-01', '2026-01-01')"
)


@pytest.fixture(scope="module")
def api(
    stack_env: dict[str, str], pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    sqlite_url = f"sqlite:///{Path(tmp_path_factory.mktemp('keys')) / 'keys.db'}"
    upgrade(sqlite_url)
    for url in (pg_url, sqlite_url):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text("DELETE FROM claim_prompt_pay WHERE claim_prompt_pay_key IN (:a, :b)"),
                {"a": EDGE_KEYS[0], "b": EDGE_KEYS[1]},
            )
            conn.execute(text("DELETE FROM place_codes WHERE place_code = 'ZK1'"))
            for key in EDGE_KEYS:
                conn.execute(text(INSERT_CLAIM), {"key": key})
            conn.execute(text(INSERT_PLACE), {"code": "ZK1"})
        engine.dispose()
    env = {
        **stack_env,
        "CLAIMPAY_DATABASES": json.dumps({"acme": pg_url, "demo": sqlite_url}),
        "CLAIMPAY_KEY_PREFIX": stack_env["CLAIMPAY_KEY_PREFIX"] + "-keys",
        "CLAIMPAY_RATE_LIMIT_PER_S": "0",  # many calls in a row; the limit is not tested here
    }
    with TestClient(create_app(stack_settings(env)), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize(
    "path",
    [
        "/claim-prompt-pays/2147483648",
        "/claim-prompt-pays/-2147483649",
        "/claim-prompt-pays/9223372036854775807",
        "/claim-prompt-pays/-9223372036854775808",
        "/claim-prompt-pays/9223372036854775808",
        "/claim-prompt-pays/" + "9" * 40,
        "/place-codes/a%00b",
        "/place-codes/%00",
        "/place-codes/" + "x" * 9,
        "/place-codes/" + "x" * 5000,
        "/place-codes/%F0%9F%92%A9%00",
    ],
)
def test_a_key_no_row_can_have_is_404(
    api: TestClient, auth_headers: Headers, database: str, path: str
) -> None:
    response = api.get(path, headers=auth_headers(database=database))
    assert response.status_code == 404, response.text
    assert response.json()["error"]["status"] == 404


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize(
    "path", ["/claim-prompt-pays/1e3", "/claim-prompt-pays/a%00b", "/claim-prompt-pays/0x10"]
)
def test_a_malformed_integer_key_is_400(
    api: TestClient, auth_headers: Headers, database: str, path: str
) -> None:
    response = api.get(path, headers=auth_headers(database=database))
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("database", DATABASES)
def test_keys_at_the_edges_of_the_range_still_read_back(
    api: TestClient, auth_headers: Headers, database: str
) -> None:
    for key in EDGE_KEYS:
        response = api.get(f"/claim-prompt-pays/{key}", headers=auth_headers(database=database))
        assert response.status_code == 200, response.text
        assert response.json()["data"]["claimPromptPay_Key"] == key
    response = api.get("/place-codes/ZK1", headers=auth_headers(database=database))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize(
    "params",
    [
        {"sortBy": "group_ID\x00:desc"},
        {"sortBy": "group_ID:de\x00sc"},
        {"sortBy": "\x00"},
        {"page": "2147483648"},
        {"page": "9" * 40},
        {"pageSize": "-1"},
        {"page": "\x00"},
    ],
)
def test_odd_list_parameters_are_400(
    api: TestClient, auth_headers: Headers, database: str, params: dict[str, str]
) -> None:
    for entity in ("/claim-prompt-pays", "/place-codes"):
        response = api.get(entity, headers=auth_headers(database=database), params=params)
        assert response.status_code == 400, (entity, response.text)


@pytest.mark.parametrize("database", DATABASES)
def test_the_last_page_reads_back_on_both_databases(
    api: TestClient, auth_headers: Headers, database: str
) -> None:
    params = {"page": str(2**31 - 1), "pageSize": "1000", "sortBy": "tax_ID:desc"}
    response = api.get("/claim-prompt-pays", headers=auth_headers(database=database), params=params)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []
