"""The several-tenants measurement: its tenants' keys never meet, and its summary and
table say what was measured."""

from __future__ import annotations

from bench.config import TENANT_B_FIRST_KEY, BenchConfig
from bench.e2e import WARM_UP_FIRST_KEY
from bench.measures import BenchResults, TenantRun, TenantsSummary
from bench.report import table_rows
from bench.tenants import SMALL_FIRST_KEY, SMALL_ROWS

SUMMARY = TenantsSummary(
    turns={"pg": TenantRun(1_000_000, 25.0, 21.0), "pg-b": TenantRun(100_000, 5.0)},
    together_s=27.5,
    small_batches=50,
    small_rows=10,
    small_p50_ms=40.0,
    small_p99_ms=120.0,
    during_rows=100_000,
    during_s=3.0,
)


def test_the_tenants_keys_never_meet() -> None:
    config = BenchConfig()
    first_tenant_last_key = max(config.batch_rows, config.big_rows)
    assert first_tenant_last_key < TENANT_B_FIRST_KEY
    assert TENANT_B_FIRST_KEY + config.batch_rows <= SMALL_FIRST_KEY
    # Small batches run one after the other for as long as a big job runs: room for a million.
    assert SMALL_FIRST_KEY + 1_000_000 * SMALL_ROWS < WARM_UP_FIRST_KEY


def test_both_tenants_rows_count_until_the_last_one_completed() -> None:
    assert SUMMARY.together_rows_per_s == 1_100_000 / 27.5  # not over the longest alone: 25 s


def test_the_table_shows_each_tenant_beside_its_batch_alone() -> None:
    rows = {row.measure: row.value for row in table_rows(BenchResults(tenants=SUMMARY))}
    first = "  tenant pg, 1,000,000 rows (sent first): first byte → completed; alone 21.00 s"
    second = "  tenant pg-b, 100,000 rows (sent at the first one's 202): first byte → completed"
    assert rows[first] == "25.00 s"
    assert rows[second] == "5.00 s"
    assert rows["  both tenants' rows, first byte sent → the last completed (27.50 s)"] == (
        "40,000 rows/s"
    )
    small = "  10-row batches of a third tenant during a 100,000-row job (50)"
    assert rows[f"{small}: p50"] == "40.0 ms"
    assert rows[f"{small}: p99"] == "120.0 ms"
    assert rows["  that job's time meanwhile"] == "3.00 s"
