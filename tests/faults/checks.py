"""What the fault tests check in the table and in the 207 envelope."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

COLUMNS = (
    ("claim_prompt_pay_key", "claimPromptPay_Key"),
    ("group_id", "group_ID"),
    ("division_id", "division_ID"),
    ("plan_id", "plan_ID"),
    ("prompt_pay_duration", "prompt_Pay_Duration"),
    ("prompt_pay_duration_type", "prompt_Pay_Duration_Type"),
    ("tax_id", "tax_ID"),
)
"""Table column and JSON name of every value the digest covers."""

_DIGEST_SQL = """
SELECT count(*), md5(string_agg(
    concat_ws('|', claim_prompt_pay_key, group_id, division_id, plan_id, prompt_pay_duration,
              prompt_pay_duration_type, tax_id),
    E'\\n' ORDER BY claim_prompt_pay_key))
FROM claim_prompt_pay WHERE claim_prompt_pay_key = ANY(:keys)
"""
"""Count and md5 of the stored values of some keys, one line per row as `expected_digest`."""


def key_of(row: dict[str, Any]) -> int:
    key: int = row["claimPromptPay_Key"]
    return key


def expected_digest(rows: Iterable[dict[str, Any]]) -> tuple[int, str | None]:
    """Row count and md5 of the values the table must hold for `rows` (last write wins)."""
    final = {key_of(row): row for row in rows}
    if not final:
        return 0, None
    lines = ("|".join(str(final[k][name]) for _, name in COLUMNS) for k in sorted(final))
    return len(final), hashlib.md5("\n".join(lines).encode()).hexdigest()  # noqa: S324


def table_digest(engine: Engine, keys: Iterable[int]) -> tuple[int, str | None]:
    """Row count and md5 of the stored values of `keys`, computed by PostgreSQL."""
    with engine.connect() as conn:
        count, digest = conn.execute(text(_DIGEST_SQL), {"keys": list(keys)}).one()
    return int(count), digest


def table_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM claim_prompt_pay")).scalar_one())


def stored_keys(engine: Engine, keys: Iterable[int]) -> set[int]:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT claim_prompt_pay_key FROM claim_prompt_pay "
                "WHERE claim_prompt_pay_key = ANY(:k)"
            ),
            {"k": list(keys)},
        ).scalars()
        return set(found)


def ledger_chunks(engine: Engine, job_id: str) -> set[int]:
    """Chunk numbers of the job that a worker applied (committed with their rows)."""
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT chunk_no FROM claimpay_chunk_ledger WHERE job_id = :job"), {"job": job_id}
        ).scalars()
        return set(found)


def seed_table(engine: Engine, rows: Iterable[dict[str, Any]]) -> None:
    """Store `rows` directly, as if an earlier batch had created them."""
    now = datetime.now(UTC).replace(tzinfo=None)
    values = [
        {column: row[name] for column, name in COLUMNS} | {"now": now, "who": "seed"}
        for row in rows
    ]
    columns = ", ".join(c for c, _ in COLUMNS)
    params = ", ".join(f":{c}" for c, _ in COLUMNS)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO claim_prompt_pay ({columns}, entry_date, entry_user, update_date) "  # noqa: S608
                f"VALUES ({params}, :now, :who, :now)"
            ),
            values,
        )


def assert_one_result_per_row(items: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """The envelope has exactly one item per input row, in input order."""
    assert len(items) == len(rows), f"{len(items)} results for {len(rows)} rows"
    ids = [item["id"][0]["value"] for item in items]
    assert ids == [key_of(row) for row in rows], "results are not in input order"


def status_counts(items: Iterable[dict[str, Any]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for item in items:
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    return counts
