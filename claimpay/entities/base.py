"""What every batch row of this API family shares: strict types and the four audit fields."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictInt,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails, core_schema

Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
"""A JSON integer that fits the database's 32-bit `int` column."""


DATE_TEXT_MESSAGE = "must be an ISO 8601 date-time string"


UTC_RANGE_MESSAGE = "is out of range once converted to UTC"
_FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)


class _IsoDateText:
    """Only text that starts like an ISO 8601 date goes on to pydantic's date-time parser
    (alone it would also read "1700000000" as a Unix time, and a number or null as well);
    a value with an offset must then still be a date once converted to UTC (only the
    first and the last day of the calendar can leave it).

    Checked inside pydantic-core, in two steps: a strict string with a pattern, then the
    parser with the first and last instants as bounds. A Python function called for every
    date of every row cost about a third of the validation of a row carrying both audit
    dates; the bounds as a step of their own (a parsed value validated again) a sixth. A
    bound's error reads as pydantic words it; `error_message` words it for a row's 400."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        text = core_schema.str_schema(pattern=r"^\d{4}-\d{2}-\d{2}", strict=True)
        checked = core_schema.custom_error_schema(
            text, custom_error_type="date_text", custom_error_message=DATE_TEXT_MESSAGE
        )
        parsed = dict(cast(dict[str, Any], handler(source)))
        nullable = parsed["type"] == "nullable"
        # Naive values are UTC already and always pass; aware ones compare as instants.
        dates = {**(parsed["schema"] if nullable else parsed)}
        if dates["type"] != "datetime":
            raise TypeError(f"{source} is not a date-time")
        dates.update(ge=_FIRST_INSTANT, le=_LAST_INSTANT)
        bounded = {**parsed, "schema": dates} if nullable else dates
        return core_schema.chain_schema([checked, cast(core_schema.CoreSchema, bounded)])


def error_message(error: ErrorDetails) -> str:
    """The message of a validation error, as a row's 400 shows it: pydantic's, except that
    an audit date beyond the calendar once converted to UTC says so."""
    if "ctx" in error and error["ctx"] in _bound_contexts():
        return UTC_RANGE_MESSAGE
    return error["msg"]


@cache
def _bound_contexts() -> tuple[dict[str, Any], ...]:
    """The context of the bound errors of `_IsoDateText`, as pydantic words them (found
    once, on the first error that has a context: not at import)."""
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[datetime | None, _IsoDateText])
    contexts = []
    for beyond in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        try:
            adapter.validate_python(beyond)
        except ValidationError as exc:
            contexts.append(exc.errors()[0].get("ctx", {}))
    if len(contexts) != 2 or not all(contexts):
        raise RuntimeError("the audit dates' bounds do not fail as expected")
    return tuple(contexts)


def as_naive_utc(value: datetime) -> datetime:
    """`value` as naive UTC, how the tables store it (a naive value is UTC already)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


Timestamp = Annotated[
    datetime | None,
    _IsoDateText,
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An ISO 8601 date-time string (never null), stored as naive UTC; no offset means UTC.

A valid value keeps the offset it was sent with: the upsert converts it (`as_naive_utc`, or
in SQL on PostgreSQL). Converting here, in a Python call per date, was half the cost of
validating a row that carries both audit dates. Optional (the service fills it) but not
nullable: its schema has no `default: null`."""


def no_default(schema: dict[str, Any]) -> None:
    """Drop `default: null` from the schema of a field that may be absent but never null."""
    schema.pop("default", None)


class AuditedRow(BaseModel):
    """Base of every row model: exact JSON names, unknown fields rejected, audit fields.

    `entry_Date`/`update_Date` are optional but not nullable: when absent the worker fills
    them with the current UTC time. `entry_User`/`update_User` absent or null are filled
    from the caller's token subject.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True)

    entry_date: Annotated[
        Timestamp,
        Field(
            alias="entry_Date",
            description="Date record was first added to the system (absent: now, UTC, on a "
            "create; an update keeps the stored one). No offset means UTC.",
            json_schema_extra=no_default,
        ),
    ] = None
    entry_user: Annotated[
        str | None,
        Field(
            alias="entry_User",
            max_length=200,
            strict=True,
            description="User that first added the record to the system (absent or null on a "
            "create: the bearer token's user).",
        ),
    ] = None
    update_date: Annotated[
        Timestamp,
        Field(
            alias="update_Date",
            description="Date the record was last updated in the system (absent: now, UTC). "
            "No offset means UTC.",
            json_schema_extra=no_default,
        ),
    ] = None
    update_user: Annotated[
        str | None,
        Field(
            alias="update_User",
            max_length=20,
            strict=True,
            description="User that last updated the record in the system (absent or null: "
            "the bearer token's user).",
        ),
    ] = None
