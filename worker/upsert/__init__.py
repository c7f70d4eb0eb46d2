"""The upsert core: (connection, rows) -> one result per row, at set-based speed."""

from worker.upsert.core import upsert_rows

__all__ = ["upsert_rows"]
