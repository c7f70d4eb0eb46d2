"""The audit columns: which ones an update keeps, and what fills the ones a row left out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

from sqlalchemy import DateTime, Table

KEEP_ON_UPDATE = ("entry_date", "entry_user")
"""Columns an update keeps unless the row sends them; a created row gets `Defaults`."""


@dataclass(frozen=True, slots=True)
class Defaults:
    """Values for the audit columns a row left out (None): the time of the chunk and the
    caller, cut to each column's length."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("entry_date", "entry_user", "update_date", "update_user")

    now: datetime
    entry_user: str
    update_user: str

    def columns(self) -> dict[str, Any]:
        """Column name -> its default, for every column in `COLUMNS`."""
        return {
            "entry_date": self.now,
            "entry_user": self.entry_user,
            "update_date": self.now,
            "update_user": self.update_user,
        }


@lru_cache(maxsize=32)
def utc_columns(table: Table) -> tuple[str, ...]:
    """The table's date-time columns that store naive UTC."""
    return tuple(
        c.name for c in table.columns if isinstance(c.type, DateTime) and not c.type.timezone
    )
