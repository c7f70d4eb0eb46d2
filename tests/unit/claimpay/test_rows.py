"""Row validation: the seed's field rules, reported by exact JSON field name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from claimpay.entities import CLAIM_PROMPT_PAY, PLACE_CODES, EntitySpec
from claimpay.entities.base import as_naive_utc
from claimpay.rows import (
    MAX_FIELD_NAME_CHARS,
    MAX_NAMED_ERRORS,
    InvalidRow,
    ValidRow,
    row_dict_type,
    usable_key,
    validate_items,
    validate_row,
)
from tests.factories import make_row

STRING_LIMITS = {
    "division_ID": 20,
    "entry_User": 200,
    "group_ID": 20,
    "plan_ID": 20,
    "tax_ID": 32,
    "update_User": 20,
}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def row_with(**fields: Any) -> dict[str, Any]:
    """A valid row (key 1) with `fields` replaced."""
    return make_row(1, **fields)


def valid(raw: Any) -> ValidRow:
    checked = validate_row(CLAIM_PROMPT_PAY, raw)
    assert isinstance(checked, ValidRow), checked
    return checked


def invalid(raw: Any) -> InvalidRow:
    checked = validate_row(CLAIM_PROMPT_PAY, raw)
    assert isinstance(checked, InvalidRow), checked
    return checked


def test_valid_row_gives_column_values_and_the_sent_fields() -> None:
    row = valid(make_row(7, prompt_Pay_Duration=30, prompt_Pay_Duration_Type="D"))
    assert row.key("claim_prompt_pay_key") == 7
    assert row.values["prompt_pay_duration"] == 30
    assert row.values["prompt_pay_duration_type"] == "D"
    assert row.values["entry_date"] is None
    assert "entry_date" not in row.sent
    assert {"claim_prompt_pay_key", "group_id", "tax_id"} <= row.sent


def test_row_with_only_the_key_is_valid() -> None:
    row = valid({"claimPromptPay_Key": 1})
    assert row.sent == frozenset({"claim_prompt_pay_key"})
    assert row.values["group_id"] is None


def test_missing_key_is_required() -> None:
    row = invalid({"group_ID": "G"})
    assert row.message == "claimPromptPay_Key: is required"
    assert row.key is None


@pytest.mark.parametrize("key", [None, "1", 1.0, 1.5, True, False, [1], {"v": 1}])
def test_key_must_be_a_json_integer(key: Any) -> None:
    row = invalid(make_row(1, claimPromptPay_Key=key))
    assert row.message.startswith("claimPromptPay_Key: ")
    assert row.key is None


@pytest.mark.parametrize("key", [INT32_MAX + 1, INT32_MIN - 1, 2**63])
def test_key_outside_int32_is_rejected(key: int) -> None:
    row = invalid(make_row(1, claimPromptPay_Key=key))
    assert row.message.startswith("claimPromptPay_Key: ")
    assert row.key is None


@pytest.mark.parametrize("key", [INT32_MIN, -1, 0, INT32_MAX])
def test_key_at_int32_bounds_is_valid(key: int) -> None:
    assert valid(make_row(1, claimPromptPay_Key=key)).key("claim_prompt_pay_key") == key


@pytest.mark.parametrize(("field", "limit"), sorted(STRING_LIMITS.items()))
def test_string_exactly_at_max_length_passes(field: str, limit: int) -> None:
    valid(row_with(**{field: "é" * limit}))


@pytest.mark.parametrize(("field", "limit"), sorted(STRING_LIMITS.items()))
def test_string_one_over_max_length_fails_naming_the_field(field: str, limit: int) -> None:
    row = invalid(row_with(**{field: "x" * (limit + 1)}))
    assert row.message == f"{field}: String should have at most {limit} characters"
    assert row.key == 1


@pytest.mark.parametrize("field", sorted(STRING_LIMITS))
@pytest.mark.parametrize("value", [5, 5.0, True, ["a"], {"a": 1}])
def test_string_field_rejects_non_strings(field: str, value: Any) -> None:
    assert invalid(row_with(**{field: value})).message.startswith(f"{field}: ")


@pytest.mark.parametrize("field", sorted(STRING_LIMITS))
def test_string_field_accepts_null(field: str) -> None:
    valid(row_with(**{field: None}))


@pytest.mark.parametrize("value", ["30", 30.0, True, -1, INT32_MAX + 1])
def test_prompt_pay_duration_must_be_a_non_negative_int32(value: Any) -> None:
    assert invalid(make_row(1, prompt_Pay_Duration=value)).message.startswith(
        "prompt_Pay_Duration: "
    )


@pytest.mark.parametrize("value", [None, 0, 30, INT32_MAX])
def test_prompt_pay_duration_accepts_null_and_int32(value: int | None) -> None:
    assert valid(make_row(1, prompt_Pay_Duration=value)).values["prompt_pay_duration"] == value


@pytest.mark.parametrize("unit", ["D", "M", "Y", None])
def test_prompt_pay_duration_type_accepts_d_m_y_or_null(unit: str | None) -> None:
    row = valid(make_row(1, prompt_Pay_Duration_Type=unit))
    assert row.values["prompt_pay_duration_type"] == unit


@pytest.mark.parametrize("unit", ["d", "W", "Days", "", " D", 1])
def test_prompt_pay_duration_type_rejects_other_units(unit: Any) -> None:
    message = invalid(make_row(1, prompt_Pay_Duration_Type=unit)).message
    assert message.startswith("prompt_Pay_Duration_Type: ")
    assert "prompt_pay_duration_type" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00", datetime(2024, 3, 1, 10, 0)),
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, 0)),
        ("2024-03-01T10:00:00.250+02:00", datetime(2024, 3, 1, 8, 0, 0, 250_000)),
        ("2024-03-01T23:30:00-05:00", datetime(2024, 3, 2, 4, 30)),
    ],
)
@pytest.mark.parametrize("field", ["entry_Date", "update_Date"])
def test_dates_keep_their_offset_and_are_naive_utc_once_converted(
    field: str, text: str, expected: datetime
) -> None:
    # The upsert stores `as_naive_utc` of the value (tests/unit/worker/test_upsert.py).
    column = field.lower()
    value = valid(row_with(**{field: text})).values[column]
    assert as_naive_utc(value) == expected
    assert (value.tzinfo is not None) == (text.endswith("Z") or text[-6] in "+-")


@pytest.mark.parametrize(
    "value",
    [None, "nope", "", "2024-13-01T00:00:00", "2024-02-30T00:00:00", "01/03/2024", 20240301],
)
@pytest.mark.parametrize("field", ["entry_Date", "update_Date"])
def test_null_or_unparseable_dates_are_rejected(field: str, value: Any) -> None:
    row = invalid(row_with(**{field: value}))
    assert row.message.startswith(f"{field}: ")
    assert row.key == 1


@pytest.mark.parametrize("text", ["0", "1700000000"])
def test_numeric_text_is_not_an_iso_date_time(text: str) -> None:
    invalid(make_row(1, update_Date=text))


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_date_whose_utc_time_is_out_of_range_is_invalid_not_raised(text: str) -> None:
    assert invalid(make_row(1, entry_Date=text)).message.startswith("entry_Date: ")


@pytest.mark.parametrize("name", ["claimPromptPay_key", "group_id", "Tax_ID", "extra"])
def test_unknown_fields_are_rejected_by_name(name: str) -> None:
    row = make_row(1)
    row[name] = "x"
    assert f"{name}: unknown field" in invalid(row).message


def test_wrong_case_key_name_is_unknown_and_the_key_missing() -> None:
    message = invalid({"claimpromptpay_key": 1}).message
    assert message.split("; ") == [
        "claimPromptPay_Key: is required",
        "claimpromptpay_key: unknown field",
    ]


def test_every_bad_field_is_reported_once_by_json_name() -> None:
    row = make_row(3, group_ID=5, prompt_Pay_Duration="30", prompt_Pay_Duration_Type="d")
    parts = invalid(row).message.split("; ")
    assert [part.split(":")[0] for part in parts] == [
        "group_ID",
        "prompt_Pay_Duration",
        "prompt_Pay_Duration_Type",
    ]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [([], "an array"), ("row", "a string"), (1, "a number"), (1.5, "a number"),
     (None, "null"), (True, "a boolean")],
)  # fmt: skip
def test_non_object_row_is_rejected(raw: Any, kind: str) -> None:
    row = invalid(raw)
    assert row.message == f"row must be a JSON object, not {kind}"
    assert row.key is None


@pytest.mark.parametrize("key", [INT32_MIN, 0, 42, INT32_MAX])
def test_usable_key_is_an_int32_json_integer(key: int) -> None:
    assert usable_key(CLAIM_PROMPT_PAY, {"claimPromptPay_Key": key}) == key


@pytest.mark.parametrize(
    "raw",
    [
        {"claimPromptPay_Key": True},
        {"claimPromptPay_Key": "1"},
        {"claimPromptPay_Key": 1.0},
        {"claimPromptPay_Key": INT32_MAX + 1},
        {"claimPromptPay_Key": None},
        {},
        [1],
        "1",
        1,
    ],
)
def test_usable_key_is_none_for_anything_else(raw: Any) -> None:
    assert usable_key(CLAIM_PROMPT_PAY, raw) is None


def test_invalid_row_keeps_its_usable_key() -> None:
    assert invalid(make_row(99, tax_ID="1" * 33)).key == 99


PLACES = [
    {"place_Code": "11", "all_Places": "N", "exclude_Proc_Auth": False, "description": "Office"},
    {"place_Code": "21", "all_Places": "Y", "exclude_Proc_Auth": True, "old_Place_Code": None},
]


@pytest.mark.parametrize(
    ("spec", "rows"),
    [(CLAIM_PROMPT_PAY, [make_row(1), make_row(2, entry_Date="2030-01-02T03:04:05+01:00")]),
     (PLACE_CODES, PLACES)],
)  # fmt: skip
def test_stored_items_validate_to_the_models_values_less_what_was_not_sent(
    spec: EntitySpec, rows: list[dict[str, Any]]
) -> None:
    items = validate_items(spec, orjson.dumps([[i * 3, row] for i, row in enumerate(rows)]))
    assert items is not None
    for (index, values), raw in zip(items, rows, strict=True):
        model = validate_row(spec, raw)
        assert isinstance(model, ValidRow)
        assert index % 3 == 0
        assert dict.fromkeys(model.values) | values == model.values
        assert set(values) == model.sent


@pytest.mark.parametrize(
    "bad",
    [{"place_Code": "11", "all_Places": "N", "exclude_Proc_Auth": "no"},
     {"place_Code": "", "all_Places": "N", "exclude_Proc_Auth": False},
     {"place_Code": "11", "all_Places": "N", "exclude_Proc_Auth": False, "extra": 1},
     {"place_code": "11", "all_Places": "N", "exclude_Proc_Auth": False}],
)  # fmt: skip
def test_one_invalid_stored_item_fails_the_whole_element(bad: dict[str, Any]) -> None:
    assert validate_items(PLACE_CODES, orjson.dumps([[0, PLACES[0]], [1, bad]])) is None
    assert isinstance(validate_row(PLACE_CODES, bad), InvalidRow)


def test_a_model_with_checks_a_dict_cannot_repeat_gets_no_dict_type() -> None:
    class Checked(BaseModel):
        model_config = ConfigDict(extra="forbid")
        low: int
        high: int

        @model_validator(mode="after")
        def ordered(self) -> Checked:
            return self

    class Defaulted(BaseModel):
        model_config = ConfigDict(extra="forbid")
        size: int = 3

    class Stripping(BaseModel):
        model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
        name: str

    class Aliased(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str = Field(alias="Name", validation_alias="NAME")

    for model in (Checked, Defaulted, Stripping, Aliased):
        with pytest.raises(TypeError):
            row_dict_type(model)


def test_a_row_of_many_bad_fields_names_the_first_few_then_counts_the_rest() -> None:
    row = {**make_row(1), **{f"extra_{n:04d}": n for n in range(1_000)}, "tax_ID": 5}
    message = invalid(row).message
    assert message.startswith("tax_ID: Input should be a valid string; extra_0000: unknown field")
    assert message.count("unknown field") == MAX_NAMED_ERRORS - 1
    assert message.endswith(f"; and {1_001 - MAX_NAMED_ERRORS} more")
    assert len(message) < 300


def test_a_long_or_unprintable_field_name_is_cut_and_made_printable() -> None:
    message = invalid({**make_row(1), "n" * 60_000: 1, "a\x00\x1bb": 2}).message
    assert f"{'n' * (MAX_FIELD_NAME_CHARS - 1)}…: unknown field" in message
    assert "a??b: unknown field" in message
    assert len(message) < 200
