"""Checks on JSON that the parser does not make: nesting depth within a row, row size,
numbers out of range, and duplicate member names.

Rows are encoded once anyway to be stored (`[index, row]`), so the row checks ride on
that: the encoded length bounds a row's size, and only a row whose text holds a bracket
after its first one is walked to measure its depth. Duplicate names vanish when a parser
builds a dict, so they are found by counting: the member names in the raw text (a string
followed by a colon) against the members of the dicts built from it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson

from producer.limits import InvalidValue, RowTooLarge, TooDeep

_SPACED_KEY_END = re.compile(rb'"[ \t\r\n]+:')
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_FLAT_ROW = b"[{}]"
"""The brackets of an encoded `[index,row]` item whose row is a flat object."""


class BadNumber(InvalidValue):
    """Raised for a number no JSON reader can take as a double or a 64-bit integer."""


def _finite_float(value: Any) -> float:
    """orjson's `default`: streamed non-integers arrive as `Decimal`."""
    if isinstance(value, Decimal):
        number = float(value)
        if number not in (float("inf"), float("-inf")):
            return number
    raise BadNumber("a number is out of range")


def _row_bytes(item: bytes) -> int:
    """The length of the row in an encoded `[index,row]` item."""
    return len(item) - item.index(b",") - 2


def count_members(value: Any, depth: int, max_depth: int) -> int:
    """Members of every object in `value` (at nesting `depth`); `TooDeep` past `max_depth`."""
    members = 0
    todo = [(value, depth)]
    while todo:
        item, level = todo.pop()
        if level > max_depth and isinstance(item, dict | list):
            raise TooDeep(f"The body nests deeper than {max_depth} levels; rows are flat objects.")
        if isinstance(item, dict):
            members += len(item)
            todo.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            todo.extend((child, level + 1) for child in item)
    return members


class RowGuard:
    """Encodes rows for storage while checking them; counts their members."""

    def __init__(self, max_row_bytes: int, max_depth: int) -> None:
        self.max_row_bytes = max_row_bytes
        self.max_depth = max_depth
        self.members = 0

    def encode(self, index: int, row: Any) -> bytes:
        """`[index, row]` as JSON; raises `RowTooLarge`, `TooDeep` or `BadNumber`."""
        try:
            item = orjson.dumps([index, row], default=_finite_float)
        except orjson.JSONEncodeError as exc:
            raise self._why(exc) from exc
        if len(item) > self.max_row_bytes and _row_bytes(item) > self.max_row_bytes:
            raise RowTooLarge(f"A row is larger than the limit of {self.max_row_bytes} bytes.")
        if type(row) is dict and item.translate(None, _NOT_BRACKETS) == _FLAT_ROW:
            self.members += len(row)  # an object with no bracket inside
        else:
            self.members += count_members(row, 2, self.max_depth)
        return item

    def encode_flat(self, start: int, rows: list[Any]) -> bytes | None:
        """The `[index, row]` items of `rows` (indexes from `start`), comma-separated, in
        one encoder call, when every row is a flat object within the size limit; None
        otherwise (then `encode` each, to find which row fails and why).

        Flat rows put no bracket in their text but their own braces (a bracket inside a
        string counts as one, which only sends the rows down the slow path), so the text
        cut at each `}` has a piece per row, each longer than its row."""
        if not set(map(type, rows)) <= {dict}:
            return None  # a string row may look flat: "{}..."
        try:
            text = orjson.dumps(list(enumerate(rows, start)))
        except orjson.JSONEncodeError:
            return None
        if text.translate(None, _NOT_BRACKETS) != b"[" + _FLAT_ROW * len(rows) + b"]":
            return None
        if len(text) > self.max_row_bytes and max(map(len, text.split(b"}"))) > self.max_row_bytes:
            return None
        self.members += sum(map(len, rows))
        return text[1:-1]

    def _why(self, exc: orjson.JSONEncodeError) -> Exception:
        if "recursion" in str(exc).lower():
            return TooDeep(f"The body nests deeper than {self.max_depth} levels; rows are flat.")
        if isinstance(exc.__cause__, BadNumber) or "integer" in str(exc).lower():
            return BadNumber("A number in the body is out of range.")
        return InvalidValue("The body holds a string or value that is not valid JSON text.")


def count_keys(text: bytes | bytearray, members: int | None = None) -> int:
    """Member names in valid JSON `text`: strings followed by a colon.

    Counting `":` never counts too few, and counts too many only for a string that starts
    with a colon or holds an escaped quote before one. So when it finds no more names
    than the parsed dicts have `members`, that is the answer; otherwise the strings are
    cut out first and the names counted exactly (four times slower)."""
    quick = text.count(b'":') + len(_SPACED_KEY_END.findall(text))
    if members is not None and quick <= members:
        return quick
    stripped = _STRING.sub(b'"', text)
    return stripped.count(b'":') + len(_SPACED_KEY_END.findall(stripped))
