"""What every batch row of this API family shares: strict types and the four audit fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    WithJsonSchema,
)

Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
"""A JSON integer that fits the database's 32-bit `int` column."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_text(value: Any) -> Any:
    # Only ISO 8601 text: pydantic alone would also read "1700000000" as a Unix time.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


def _as_naive_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
    return value


Timestamp = Annotated[
    datetime | None,
    BeforeValidator(_date_text),
    AfterValidator(_as_naive_utc),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An ISO 8601 date-time string (never null), stored as naive UTC; no offset means UTC."""


class AuditedRow(BaseModel):
    """Base of every row model: exact JSON names, unknown fields rejected, audit fields.

    `entry_Date`/`update_Date` are optional but not nullable: when absent the worker fills
    them with the current UTC time. `entry_User`/`update_User` absent or null are filled
    from the caller's token subject.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True)

    entry_date: Annotated[Timestamp, Field(alias="entry_Date")] = None
    entry_user: Annotated[str | None, Field(alias="entry_User", max_length=200, strict=True)] = None
    update_date: Annotated[Timestamp, Field(alias="update_Date")] = None
    update_user: Annotated[str | None, Field(alias="update_User", max_length=20, strict=True)] = (
        None
    )
