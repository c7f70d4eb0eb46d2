"""The database schema version both sides agree on.

Workers migrate a database to the newest Alembic revision (`worker/migrations/`); the API's
readiness check reads the version table to see it is there without importing the worker.
A unit test keeps `SCHEMA_REVISION` equal to the real Alembic head.
"""

from __future__ import annotations

SCHEMA_REVISION = "0002"
"""The Alembic head revision this code needs."""
VERSION_TABLE = "claimpay_alembic_version"
"""The table where Alembic records a database's revision (the worker's migrations write it)."""
