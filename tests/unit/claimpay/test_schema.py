"""The contracts' schema revision is the real Alembic head (the API checks it in readiness)."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import column, create_engine, inspect, select, table

from claimpay.schema import SCHEMA_REVISION, VERSION_TABLE
from worker.migrate import alembic_config, upgrade


def test_schema_revision_is_the_alembic_head() -> None:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head == SCHEMA_REVISION


def test_migrations_record_the_revision_in_the_version_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade(url)
    engine = create_engine(url)
    try:
        assert VERSION_TABLE in inspect(engine).get_table_names()
        with engine.connect() as conn:
            versions = table(VERSION_TABLE, column("version_num"))
            assert list(conn.execute(select(versions.c.version_num)).scalars()) == [SCHEMA_REVISION]
    finally:
        engine.dispose()
