"""The checks the JSON parser does not make: member names counted in raw text (duplicates),
row size, depth and out-of-range numbers at encoding."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer.jsonguard import RowGuard, count_keys
from producer.limits import InvalidValue, RowTooLarge, TooDeep

TRICKY_STRINGS = [
    'a"b', "[{", "x\\", '\\"]', "}}}", '"', "\\", "\\\\", 'k":', ' " : ', "é",
    ":", " :x", ",", "\x00:",
]  # fmt: skip


json_values = st.recursive(
    st.none() | st.integers() | st.sampled_from(TRICKY_STRINGS) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(TRICKY_STRINGS) | st.text(max_size=3), children, max_size=3
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 1]))
def test_count_keys_counts_every_member_name(value: Any, indent: int | None) -> None:
    text = json.dumps([value], indent=indent).encode()
    members = 0
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            members += len(item)
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    assert count_keys(text) == members


@pytest.mark.parametrize(
    "text",
    [
        b'[{"a": 1, "a": 2}]',
        b'[{"a":1,"a" :2}]',
        b'[{"a":1,"b":{"c":1,"c":2}}]',
        b'[{"x\\"":1,"x\\"":2}]',
        b'[{"a\\\\":1,"a\\\\":2}]',
    ],
)
def test_duplicate_member_names_show_as_more_names_than_members(text: bytes) -> None:
    parsed = json.loads(text)
    guard = RowGuard(max_row_bytes=1000, max_depth=8)
    for index, row in enumerate(parsed):
        guard.encode(index, row)
    assert count_keys(text) > guard.members
    assert count_keys(text, guard.members) > guard.members


def test_row_guard_bounds_row_size_and_depth_and_numbers() -> None:
    guard = RowGuard(max_row_bytes=64, max_depth=4)
    assert guard.encode(7, {"a": "x" * 40}) == b'[7,{"a":"' + b"x" * 40 + b'"}]'
    with pytest.raises(RowTooLarge):
        guard.encode(0, {"a": "x" * 100})
    guard.encode(0, {"a": [[1]]})  # depth 4: array 1, row 2, 3, 4
    with pytest.raises(TooDeep):
        guard.encode(0, {"a": [[[1]]]})
    nested: Any = 1
    for _ in range(300):
        nested = [nested]
    with pytest.raises(TooDeep):
        RowGuard(max_row_bytes=10**6, max_depth=8).encode(0, nested)
    with pytest.raises(InvalidValue):
        guard.encode(0, {"a": 2**70})
    with pytest.raises(InvalidValue):
        guard.encode(0, {"a": Decimal("1e400")})
    with pytest.raises(InvalidValue):
        guard.encode(0, {"a": "\ud800"})
    assert guard.encode(0, {"a": Decimal("1.5")}) == b'[0,{"a":1.5}]'


def test_flat_rows_are_encoded_in_one_call_as_each_would_be() -> None:
    guard, one_by_one = RowGuard(max_row_bytes=64, max_depth=4), RowGuard(64, 4)
    rows = [{"a": 1, "b": "x" * 40}, {}, {"c": None}]
    text = guard.encode_flat(5, rows)
    assert text == b",".join(one_by_one.encode(5 + i, row) for i, row in enumerate(rows))
    assert guard.members == one_by_one.members == 3


@pytest.mark.parametrize(
    "rows",
    [
        [{"a": 1}, {"a": "x" * 100}],  # a row over the size limit
        [{"a": 1}, {"a": [1]}],  # not flat
        [{"a": "{"}],  # a bracket in a string: flat, but not provably so at a glance
        [{"a": 1}, 7],  # not an object
        [{"a": 2**70}],  # not encodable
    ],
)
def test_rows_that_might_break_a_limit_are_left_to_one_by_one_checks(rows: list[Any]) -> None:
    guard = RowGuard(max_row_bytes=64, max_depth=4)
    assert guard.encode_flat(0, rows) is None
    assert guard.members == 0


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 80), min_size=1, max_size=6),
    index=st.integers(0, 10**7),
)
def test_one_call_never_passes_a_row_over_the_limit(sizes: list[int], index: int) -> None:
    rows = [{"a": "x" * size} for size in sizes]
    guard = RowGuard(max_row_bytes=64, max_depth=4)
    text = guard.encode_flat(index, rows)
    over = any(len(json.dumps(row, separators=(",", ":"))) > 64 for row in rows)
    if over:
        assert text is None
    elif text is not None:
        one_by_one = RowGuard(64, 4)
        assert text == b",".join(one_by_one.encode(index + i, r) for i, r in enumerate(rows))


def test_a_string_that_looks_like_an_object_adds_no_members() -> None:
    """Else it would hide a repeated member name elsewhere in the body."""
    one_by_one, at_once = RowGuard(max_row_bytes=64, max_depth=4), RowGuard(64, 4)
    one_by_one.encode(0, "{}xxxxxxxx")
    assert at_once.encode_flat(0, ["{}xx"]) is None
    assert one_by_one.members == at_once.members == 0
    text = b'["{}xxxxxxxx", {"claimPromptPay_Key": 1, "tax_ID": "a", "tax_ID": "b"}]'
    guard = RowGuard(max_row_bytes=64, max_depth=4)
    for index, row in enumerate(json.loads(text)):
        guard.encode(index, row)
    assert count_keys(text, guard.members) > guard.members  # the repeat shows
