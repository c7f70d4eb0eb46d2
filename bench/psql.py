"""The strongest limit: COPY into a temporary table and one `INSERT ... ON CONFLICT DO
UPDATE`, in one transaction, driven by `psql` from a prepared file.

The COPY file (`bench.loader.prepare_batch`) and the SQL script are written before the
clock starts; only the `psql` run is timed (its start, connection, the COPY, the merge
and the commit). No Python touches a row while it runs.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from bench.loader import PreparedBatch
from bench.measures import Throughput
from bench.rows import COLUMNS, existing_keys
from bench.tables import TABLE, reset_postgres

STAGE = "bench_stage"
PSQL_TIMEOUT_S = 600


class PsqlFailed(Exception):
    """Raised when `psql` is missing, fails, or does not report the expected counts."""


def merge_script(table: str, columns: Sequence[str], key: str, data_path: Path) -> str:
    """The psql script: a temporary table like `table`, `\\copy` of `data_path` (COPY text
    format, `columns` in order) into it, one merge into `table` on `key`, and a line
    `created|updated` with the merge's counts."""
    if key not in columns:
        raise ValueError(f"the key {key!r} is not among the columns")
    for name in (table, *columns):
        if not name.isidentifier() or name.lower() != name:
            raise ValueError(f"{name!r} is not a plain lower-case identifier")
    path = str(data_path)
    if "'" in path or "\n" in path or "\\" in path:
        raise ValueError(f"the COPY file's path cannot be quoted for psql: {path!r}")
    return f"""\\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE {STAGE} (LIKE {table}) ON COMMIT DROP;
\\copy {STAGE} ({", ".join(columns)}) FROM '{path}'
{merge_sql(table, columns, key)};
COMMIT;
"""


def merge_sql(table: str, columns: Sequence[str], key: str) -> str:
    """The limit's one merge of `STAGE` into `table` on `key`; it returns one row, the
    counts of the rows it created and updated. Both limits (`psql` and Python) run it."""
    cols = ", ".join(columns)
    sets = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns if name != key)
    return f"""WITH merged AS (
  INSERT INTO {table} ({cols}) SELECT {cols} FROM {STAGE}
  ON CONFLICT ({key}) DO UPDATE SET {sets}
  RETURNING (xmax = 0) AS created
)
SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM merged"""  # noqa: S608 - identifiers checked by the callers or constants, no values


def parse_counts(output: str) -> tuple[int, int]:
    """`(created, updated)` from psql's unaligned, tuples-only output (`50000|50000`)."""
    for line in reversed(output.strip().splitlines()):
        parts = line.strip().split("|")
        if len(parts) == 2 and all(part.isdigit() for part in parts):
            return int(parts[0]), int(parts[1])
    raise PsqlFailed(f"psql printed no counts: {output.strip()[-200:]!r}")


def psql_path() -> str:
    """The `psql` on PATH; `PsqlFailed` when there is none."""
    found = shutil.which("psql")
    if found is None:
        raise PsqlFailed("psql is not on PATH (Debian: apt-get install postgresql-client)")
    return found


def copy_merge_psql(libpq_url: str, batch: PreparedBatch, workdir: Path) -> Throughput:
    """Load `batch` with `psql` into a table holding every other key of it; the rate is
    rows / (the psql run's wall time)."""
    psql = psql_path()
    existing = existing_keys(batch.rows, batch.first_key)
    reset_postgres(libpq_url, existing)
    script = workdir / f"{batch.copy_path.stem}-merge.sql"
    script.write_text(merge_script(TABLE, COLUMNS, COLUMNS[0], batch.copy_path.resolve()))
    argv = [psql, "-X", "-q", "-A", "-t", "-f", str(script), libpq_url]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=PSQL_TIMEOUT_S, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise PsqlFailed(f"psql exited with {done.returncode}: {done.stderr.strip()[-300:]}")
    created, updated = parse_counts(done.stdout)
    if (created, updated) != (batch.rows - len(existing), len(existing)):
        raise PsqlFailed(f"psql COPY + merge: created {created}, updated {updated}")
    return Throughput(batch.rows, seconds, created=created, updated=updated)
