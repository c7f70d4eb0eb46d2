"""The contracts' schema revision is the real Alembic head (the API checks it in readiness)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from claimpay.schema import SCHEMA_REVISION, VERSION_TABLE
from worker.migrate import VERSION_TABLE as MIGRATIONS_VERSION_TABLE
from worker.migrate import alembic_config


def test_schema_revision_is_the_alembic_head() -> None:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head == SCHEMA_REVISION


def test_version_table_is_the_one_migrations_write() -> None:
    assert VERSION_TABLE == MIGRATIONS_VERSION_TABLE
