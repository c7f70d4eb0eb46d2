"""Row validation: one raw JSON value in, a clean row or a 400 message out. Never raises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from claimpay.entities import EntitySpec


@dataclass(frozen=True, slots=True)
class ValidRow:
    """A row that passed validation: column values plus which fields the caller sent."""

    values: dict[str, Any]
    sent: frozenset[str]

    def key(self, column: str) -> Any:
        return self.values[column]


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row that failed validation; `message` names each bad field by its JSON name."""

    message: str
    key: Any


def validate_row(spec: EntitySpec, raw: Any) -> ValidRow | InvalidRow:
    """Validate one input value against the entity's row model."""
    if not isinstance(raw, dict):
        return InvalidRow(f"row must be a JSON object, not {_json_type(raw)}", None)
    try:
        model: BaseModel = spec.row_model.model_validate(raw)
    except ValidationError as exc:
        return InvalidRow(_describe(exc), usable_key(spec, raw))
    # `__dict__` holds exactly the fields; `dict(model)` would iterate in Python, 3x slower.
    return ValidRow(values=model.__dict__.copy(), sent=frozenset(model.model_fields_set))


def validate_rows(spec: EntitySpec, raws: list[Any]) -> list[dict[str, Any]] | None:
    """Column values of every row when all of them are valid (one call into pydantic,
    about twice as fast as row by row); None when any row is invalid. The values are the
    (frozen) models' own: read them, never change them."""
    try:
        models = _list_adapter(spec.row_model).validate_python(raws)
    except ValidationError:
        return None
    return [model.__dict__ for model in models]


def validate_items(spec: EntitySpec, text: bytes) -> list[tuple[int, dict[str, Any]]] | None:
    """`(index, column values)` of every item of a JSON array of `[index, row]` items when
    all of them are well formed and valid, parsed and validated in one call (a fifth
    faster than parsing first); None otherwise. The values are read-only, as above."""
    try:
        items = _items_adapter(spec.row_model).validate_json(text)
    except ValidationError:
        return None
    return [(index, model.__dict__) for index, model in items]


@lru_cache(maxsize=16)
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


@lru_cache(maxsize=16)
def _items_adapter(model: type[BaseModel]) -> TypeAdapter[list[tuple[int, BaseModel]]]:
    return TypeAdapter(list[tuple[int, model]])  # type: ignore[valid-type]


def usable_key(spec: EntitySpec, raw: Any) -> int | str | None:
    """The row's key when it has the entity's key type, else None (such a row is invalid
    and cannot be grouped with others of its key)."""
    value = raw.get(spec.key_field) if isinstance(raw, dict) else None
    if spec.key_type is str:
        return value if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "row"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "is required"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, bool | list | str) or value is None:
        return names[type(value)]
    return "a number"
