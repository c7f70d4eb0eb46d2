"""The bench's strongest limit on the real PostgreSQL with the real `psql`: it loads
exactly the rows of the body claimpay is sent, half of them over existing keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bench.loader import prepare_batch
from bench.psql import copy_merge_psql
from bench.rows import COLUMNS
from bench.tables import TABLE
from tests.conftest import IN_CI
from tests.integration.conftest import scratch_postgres_database

pytestmark = pytest.mark.postgres


def test_the_psql_limit_stores_the_body_rows(tmp_path: Path) -> None:
    if shutil.which("psql") is None:
        if IN_CI:
            pytest.fail("psql is not on PATH, and CI=true requires it")
        pytest.skip("psql is not on PATH")
    batch = prepare_batch(tmp_path, "b", 801, first_key=5, seed=2)
    with scratch_postgres_database("claimpay_bench") as url:
        libpq = make_url(url).set(drivername="postgresql").render_as_string(False)
        measured = copy_merge_psql(libpq, batch, tmp_path)
        with psycopg.connect(libpq) as conn:
            stored = conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY 1"  # noqa: S608
            ).fetchall()
    assert (measured.rows, measured.created, measured.updated) == (801, 400, 401)
    assert measured.seconds > 0
    assert stored == batch.table_rows()
