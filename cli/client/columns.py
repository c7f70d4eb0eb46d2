"""CSV columns of an entity, typed from its row model: each cell becomes a JSON value.

The header names are the entity's exact JSON names. A cell is converted by the type its
field has in the row model's JSON schema: integers (`claimPromptPay_Key`,
`prompt_Pay_Duration`), booleans (`exclude_Proc_Auth`), numbers, strings (dates too).
An **empty cell omits the field**: it never means null, because some fields are optional
but not nullable (`entry_Date`, `update_Date`); an omitted nullable field is stored as
null by an update anyway, and an omitted date is filled (or kept) by the service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from claimpay.entities import EntitySpec

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class CellError(ValueError):
    """Raised when a cell cannot be read as its column's type."""


@dataclass(frozen=True, slots=True)
class Column:
    """One CSV column: the field's JSON name and its JSON type."""

    name: str
    kind: str
    """`string`, `integer`, `number` or `boolean`."""

    def convert(self, cell: str) -> Any:
        """The JSON value of a non-empty cell; `CellError` when it does not fit the type."""
        if self.kind == "integer":
            text = cell.strip()
            if not _INTEGER.fullmatch(text):
                raise CellError(f"column {self.name}: {cell!r} is not an integer")
            return int(text)
        if self.kind == "boolean":
            text = cell.strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise CellError(f"column {self.name}: {cell!r} is not a boolean (true/false)")
        if self.kind == "number":
            try:
                return float(cell)
            except ValueError:
                raise CellError(f"column {self.name}: {cell!r} is not a number") from None
        return cell


def entity_columns(spec: EntitySpec) -> dict[str, Column]:
    """Every field of the entity, by JSON name, with its JSON type."""
    schema = spec.row_model.model_json_schema(by_alias=True)
    return {
        name: Column(name, _json_type(prop)) for name, prop in schema.get("properties", {}).items()
    }


def required_columns(spec: EntitySpec) -> list[str]:
    """JSON names of the fields every row must have (the key among them)."""
    return [
        field.alias or attr
        for attr, field in spec.row_model.model_fields.items()
        if field.is_required()
    ]


def _json_type(prop: dict[str, Any]) -> str:
    options = prop.get("anyOf", [prop])
    kinds = [option.get("type") for option in options if option.get("type") != "null"]
    kind = kinds[0] if kinds else "string"
    return kind if kind in ("integer", "number", "boolean") else "string"
