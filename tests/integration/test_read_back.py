"""Read back: `GET /claim-prompt-pays` (paged with `x-pagination`, sorted by `sortBy`) and
`GET /claim-prompt-pays/{key}` return what the batches wrote to PostgreSQL, in the seed
API's `{data, error, debug}` shape.

The session's database is shared with other tests, so pages are compared with the same
query run directly on PostgreSQL rather than with a fixed list."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Integer, column, select, table, text

from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET, make_row
from tests.integration.batches import LIST, Headers, put_batch, statuses

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FIRST = 1_500_001
MAX_PAGE_SIZE = 1_000
ROWS = 25


@pytest.fixture(scope="module")
def written(client: TestClient) -> list[dict[str, Any]]:
    """Rows written through the pipeline, with distinct durations and group IDs (which
    sort after every other test's)."""
    rows = [
        make_row(FIRST + i, prompt_Pay_Duration=(i * 7) % ROWS, group_ID=f"ZZRB{ROWS - i:03d}")
        for i in range(ROWS)
    ]
    headers = {
        "x-api-key": API_KEY,
        "Authorization": f"Bearer {mint_token(JWT_SECRET, 'reader', 600)}",
        "vbasoftware-database": "acme",
        "Prefer": "wait=10",
    }
    response = put_batch(client, rows, headers)
    assert response.status_code == 207, response.text
    assert statuses(response.json()["data"]) == [201] * ROWS
    return rows


def keys_in_sql_order(engine: Engine, order: str, offset: int, limit: int) -> list[int]:
    """Keys of the rows `offset..offset+limit-1` when PostgreSQL sorts them by `order`."""
    query = (
        select(column("claim_prompt_pay_key", Integer))
        .select_from(table("claim_prompt_pay"))
        .order_by(text(order))
        .offset(offset)
        .limit(limit)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def table_count(engine: Engine) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(text("SELECT count(*) FROM claim_prompt_pay")).scalar_one()
    return count


def listed(client: TestClient, headers: dict[str, str], **params: str | int) -> Any:
    response = client.get(LIST, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response


def test_one_row_reads_back_with_the_seeds_field_names(
    client: TestClient, written: list[dict[str, Any]], auth_headers: Headers
) -> None:
    response = client.get(f"{LIST}/{FIRST + 3}", headers=auth_headers(database="acme"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None
    assert set(body["debug"]) == {"activityID"}
    row = body["data"]
    assert {name: row[name] for name in written[3]} == written[3]
    assert (row["entry_User"], row["update_User"]) == ("reader", "reader")
    assert row["entry_Date"]
    assert row["update_Date"]


def test_an_unknown_key_is_404_in_the_error_envelope(
    client: TestClient, written: list[dict[str, Any]], auth_headers: Headers
) -> None:
    response = client.get(f"{LIST}/{FIRST + ROWS + 1}", headers=auth_headers(database="acme"))
    assert response.status_code == 404
    body = response.json()
    assert body["data"] is None
    assert body["error"]["status"] == 404


def test_pages_follow_the_key_order_and_report_the_totals(
    client: TestClient, pg_engine: Engine, written: list[dict[str, Any]], auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    first = listed(client, headers, page=1, pageSize=10, sortBy="claimPromptPay_Key:desc")
    second = listed(client, headers, page=2, pageSize=10, sortBy="claimPromptPay_Key:desc")
    total = table_count(pg_engine)

    assert json.loads(second.headers["x-pagination"]) == {
        "TotalCount": total,
        "TotalPages": -(-total // 10),
        "CurrentPage": 2,
        "PageSize": 10,
    }
    keys = [row["claimPromptPay_Key"] for row in first.json()["data"] + second.json()["data"]]
    assert keys == keys_in_sql_order(pg_engine, "claim_prompt_pay_key DESC", 0, 20)
    assert first.json()["error"] is None


def test_sort_by_several_fields_matches_postgres(
    client: TestClient, pg_engine: Engine, written: list[dict[str, Any]], auth_headers: Headers
) -> None:
    headers = auth_headers(database="acme")
    response = listed(
        client, headers, page=3, pageSize=7, sortBy="prompt_Pay_Duration:desc,group_ID:asc"
    )
    order = "prompt_pay_duration DESC, group_id ASC, claim_prompt_pay_key ASC"
    expected = keys_in_sql_order(pg_engine, order, 14, 7)
    assert [row["claimPromptPay_Key"] for row in response.json()["data"]] == expected


def test_a_descending_sort_on_a_text_field_puts_the_largest_first(
    client: TestClient, pg_engine: Engine, written: list[dict[str, Any]], auth_headers: Headers
) -> None:
    with pg_engine.connect() as conn:
        nulls: int = conn.execute(
            text("SELECT count(*) FROM claim_prompt_pay WHERE group_id IS NULL")
        ).scalar_one()
    assert nulls + ROWS <= MAX_PAGE_SIZE
    # Wherever NULLs sort, the first named group IDs of this page are this test's.
    response = listed(
        client, auth_headers(database="acme"), pageSize=nulls + ROWS, sortBy="group_ID:desc"
    )
    named = [row for row in response.json()["data"] if row["group_ID"] is not None][:ROWS]
    assert [row["group_ID"] for row in named] == sorted(
        (row["group_ID"] for row in written), reverse=True
    )
    assert named[0] == {**named[0], **written[0]}


def test_an_unknown_sort_field_is_400(
    client: TestClient, written: list[dict[str, Any]], auth_headers: Headers
) -> None:
    response = client.get(
        LIST, headers=auth_headers(database="acme"), params={"sortBy": "password:asc"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == 400
