"""The audit dates' check accepts and refuses exactly what the earlier Python validators
did (kept here as the reference), on any input; and the value it keeps (with the offset
sent) is, once converted as the upsert does, the one they returned."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, BeforeValidator, TypeAdapter, ValidationError

from claimpay.entities.base import Timestamp, as_naive_utc, error_message
from tests.factories import UTC_OFFSETS

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _reference_date_text(value: Any) -> Any:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time string")
    return value


def _reference_naive_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
    return value


REFERENCE = TypeAdapter(
    Annotated[
        datetime | None,
        BeforeValidator(_reference_date_text),
        AfterValidator(_reference_naive_utc),
    ]
)
CURRENT = TypeAdapter(Timestamp)


def outcome(validate: Any, value: Any) -> tuple[str, Any]:
    """The value, or the error messages as a row's 400 shows them (`error_message`)."""
    try:
        return "valid", validate(value)
    except ValidationError as exc:
        messages = [error_message(e).removeprefix("Value error, ") for e in exc.errors()]
        return "invalid", messages


def stored(validate: Any) -> Any:
    """`validate`, and the value converted as the upsert stores it."""

    def checked(value: Any) -> Any:
        result = validate(value)
        return None if result is None else as_naive_utc(result)

    return checked


def assert_same(value: Any) -> None:
    current = outcome(stored(CURRENT.validate_python), value)
    assert current == outcome(REFERENCE.validate_python, value)
    document = json.dumps(value)
    current = outcome(stored(CURRENT.validate_json), document)
    assert current == outcome(REFERENCE.validate_json, document)


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """Date-time text as clients write it, and near misses of it."""
    moment = draw(st.datetimes(timezones=st.none() | st.just(UTC) | UTC_OFFSETS))
    text = draw(
        st.sampled_from(
            [
                moment.isoformat(),
                moment.isoformat(sep=" "),
                moment.isoformat(timespec="milliseconds"),
                moment.replace(tzinfo=None).isoformat() + "Z",
                moment.date().isoformat(),
                moment.strftime("%Y-%m-%dT%H:%M"),
            ]
        )
    )
    cut = draw(st.integers(0, len(text)))
    mutation = draw(st.sampled_from(["keep", "cut", "insert", "replace"]))
    extra = draw(st.text(max_size=2))
    if mutation == "cut":
        return text[:cut]
    if mutation == "insert":
        return text[:cut] + extra + text[cut:]
    if mutation == "replace":
        return text[:cut] + extra + text[cut + len(extra) :]
    return text


@settings(max_examples=600, deadline=None)
@given(iso_texts())
@example("0001-01-01T00:00:00+01:00")
@example("9999-12-31T23:00:00-05:00")
@example("2024-02-30T00:00:00")
@example("1700000000")
@example("2024-03-01")
@example("\u0662\u0660\u0662\u0664-\u0660\u0663-\u0660\u0661T00:00:00")  # Arabic-Indic
def test_date_text_like_iso_8601_is_read_as_before(text: str) -> None:
    assert_same(text)


@settings(max_examples=300, deadline=None)
@given(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.lists(st.integers(), max_size=2)
)
def test_anything_else_is_refused_or_read_as_before(value: Any) -> None:
    assert_same(value)
