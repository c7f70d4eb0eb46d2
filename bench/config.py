"""What one benchmark run measures and where: sizes, servers and the run's unique names."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

RESULTS_DIR = Path(__file__).resolve().parent / "results"
API_KEY = "bench-key"
USER = "bench"
PG_DATABASE = "pg"
SQLITE_DATABASE = "lite"
TENANT_B_DATABASE = "pg-b"
SMALL_TENANT_DATABASE = "pg-small"
"""Two more tenants (`bench.tenants`), naming the same PostgreSQL database as `pg`."""
TENANT_B_FIRST_KEY = 100_000_001
"""The second tenant's keys: above every key of the first tenant's batches."""


def _run_id() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of each measurement and the servers to use; every name is unique to the run."""

    pg_admin_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/0"
    naive_rows: int = 3_000
    batch_rows: int = 100_000
    big_rows: int = 1_000_000
    repeat: int = 3
    """Repetitions of the 100k-row measurements (limit, end to end); the median counts."""
    latency_batches: int = 200
    latency_rows: int = 10
    concurrency: int = 2
    logs_dir: Path | None = None
    run_id: str = field(default_factory=_run_id)
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def scratch_db(self) -> str:
        """The PostgreSQL database created for this run and dropped after it."""
        return f"claimpay_bench_{self.run_id}"

    @property
    def key_prefix(self) -> str:
        return f"bench-{self.run_id}"

    @property
    def queue(self) -> str:
        return f"bench-{self.run_id}-q"

    def scratch_url(self, driver: str = "postgresql") -> str:
        """The scratch database's URL; `driver` as SQLAlchemy names it."""
        url = make_url(self.pg_admin_url).set(drivername=driver, database=self.scratch_db)
        return url.render_as_string(hide_password=False)

    def libpq_url(self) -> str:
        """The scratch database's URL as psycopg takes it."""
        return self.scratch_url("postgresql")
