"""The several-tenants measurement: its tenants' keys never meet, and its summary and
table say what was measured."""

from __future__ import annotations

from bench.config import TENANT_B_FIRST_KEY, BenchConfig
from bench.e2e import WARM_UP_FIRST_KEY
from bench.measures import BenchResults, TenantsSummary, Throughput
from bench.report import table_rows
from bench.tenants import SMALL_FIRST_KEY, SMALL_ROWS

SUMMARY = TenantsSummary(
    rows_each=100_000,
    together_s={"pg": 2.0, "pg-b": 4.0},
    small_batches=50,
    small_rows=10,
    small_p50_ms=40.0,
    small_p99_ms=120.0,
    big_during_small_s=3.0,
)


def test_the_tenants_keys_never_meet() -> None:
    config = BenchConfig()
    first_tenant_last_key = max(config.batch_rows, config.big_rows)
    assert first_tenant_last_key < TENANT_B_FIRST_KEY
    assert TENANT_B_FIRST_KEY + config.batch_rows <= SMALL_FIRST_KEY
    # Small batches run one after the other for as long as a big job runs: room for a million.
    assert SMALL_FIRST_KEY + 1_000_000 * SMALL_ROWS < WARM_UP_FIRST_KEY


def test_both_tenants_rows_count_until_the_last_one_completed() -> None:
    assert SUMMARY.together_rows_per_s == 200_000 / 4.0


def test_the_table_shows_each_tenant_beside_one_alone() -> None:
    results = BenchResults(tenants=SUMMARY, postgres=Throughput(100_000, 2.5, 50_000, 50_000))
    rows = {row.measure: row.value for row in table_rows(results)}
    alone = "first byte → completed, alone 2.50 s"
    assert rows[f"  tenant pg (sent first): {alone}"] == "2.00 s"
    assert rows[f"  tenant pg-b (sent at the first one's 202): {alone}"] == "4.00 s"
    assert rows["  both tenants' rows, until the last completed"] == "50,000 rows/s"
    small = "  10-row batches of a third tenant during one of them (50)"
    assert rows[f"{small}: p50"] == "40.0 ms"
    assert rows[f"{small}: p99"] == "120.0 ms"
    assert rows["  the big batch's time meanwhile"] == "3.00 s"
