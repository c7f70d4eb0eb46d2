"""Row validation: one raw JSON value in, a clean row or a 400 message out. Never raises."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from typing import Annotated, Any, NotRequired, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from claimpay.entities import EntitySpec
from claimpay.entities.base import error_message


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
    all of them are well formed and valid, parsed and validated in one call; None
    otherwise. A column the row did not send may be absent from its values (read it with
    `.get`): the rows are validated as dicts (`row_dict_type`), about twice as fast as
    parsing first and building models."""
    try:
        return _items_adapter(spec.row_model).validate_json(text)
    except ValidationError:
        return None


def row_dict_type(model: type[BaseModel]) -> type[dict[str, Any]]:
    """A `TypedDict` that validates like `model` (the same fields, JSON names, types,
    constraints and field validators, unknown names refused) into a plain dict of the
    fields sent. Raises `TypeError` for a model whose checks a dict would not repeat:
    model-level validators, or any configuration but the row models' own."""
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.field_validators or decorators.validators:
        raise TypeError(f"{model.__name__} has validators a TypedDict would not run")
    config = model.model_config
    if (
        config.get("extra") != "forbid"
        or config.get("populate_by_name")
        or (set(config) - _ROW_CONFIG)
    ):
        raise TypeError(f"{model.__name__} is configured unlike a row model")
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if not field.is_required() and field.default is not None:
            raise TypeError(f"{model.__name__}.{name} has a default a TypedDict would not set")
        if field.validation_alias is not None and field.validation_alias != field.alias:
            raise TypeError(f"{model.__name__}.{name} has a validation alias")
        typed = _ANNOTATED[(field.annotation, *field.metadata, Field(alias=field.alias))]
        fields[name] = typed if field.is_required() else _NOT_REQUIRED[typed]
    row_dict = _TYPED_DICT(f"{model.__name__}Dict", fields)
    row_dict.__pydantic_config__ = ConfigDict(extra="forbid")
    return cast(type[dict[str, Any]], row_dict)


_ROW_CONFIG = {"extra", "populate_by_name", "frozen"}
"""The model configuration a row model may have: what a TypedDict repeats or ignores."""

# Types built at run time, which a type checker cannot follow.
_ANNOTATED: Any = Annotated
_NOT_REQUIRED: Any = NotRequired
_TYPED_DICT: Any = TypedDict  # typing_extensions': pydantic needs it before Python 3.12


@lru_cache(maxsize=16)
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


@lru_cache(maxsize=16)
def _items_adapter(model: type[BaseModel]) -> TypeAdapter[list[tuple[int, dict[str, Any]]]]:
    items: Any = list[tuple[int, row_dict_type(model)]]  # type: ignore[misc]
    # Only member names repeat from row to row: caching every string (the default) costs
    # a lookup per value for nothing, about 8% of the validation of a loader's rows.
    return TypeAdapter(items, config=ConfigDict(cache_strings="keys"))


def usable_key(spec: EntitySpec, raw: Any) -> int | str | None:
    """The row's key when it has the entity's key type, else None (such a row is invalid
    and cannot be grouped with others of its key)."""
    value = raw.get(spec.key_field) if isinstance(raw, dict) else None
    if spec.key_type is str:
        return value if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    return None


def usable_keys(spec: EntitySpec, raws: list[Any]) -> list[int | str]:
    """`usable_key` of every row that has one, in order: the same test, a list at a time
    (at C speed when every row is an object with a usable key: a valid batch)."""
    if set(map(type, raws)) == {dict}:
        found: list[Any] = list(map(dict.get, raws, repeat(spec.key_field, len(raws))))
        if set(map(type, found)) == {spec.key_type} and (
            spec.key_type is str or -(2**31) <= min(found) <= max(found) < 2**31
        ):
            return found
    values = [raw.get(spec.key_field) for raw in raws if type(raw) is dict]
    if spec.key_type is str:
        return [value for value in values if type(value) is str]
    return [value for value in values if type(value) is int and -(2**31) <= value < 2**31]


MAX_NAMED_ERRORS = 3
"""A row's message names this many bad fields, then says how many more there are: a row
of a thousand unknown names must not store a thousand names in its result."""
MAX_FIELD_NAME_CHARS = 40
"""A field name longer than this is cut (with "…") in a row's message."""
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]")


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for error in errors[:MAX_NAMED_ERRORS]:
        field = _field_name(error["loc"])
        message = error_message(error)
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "is required"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    if len(errors) > MAX_NAMED_ERRORS:
        parts.append(f"and {len(errors) - MAX_NAMED_ERRORS} more")
    return "; ".join(parts)


def _field_name(loc: tuple[int | str, ...]) -> str:
    """The field's JSON name (`a.b` when nested), printable and at most
    `MAX_FIELD_NAME_CHARS` long: an unknown name is the client's text, of any length."""
    name = _UNPRINTABLE.sub("?", ".".join(str(part) for part in loc)) or "row"
    return name if len(name) <= MAX_FIELD_NAME_CHARS else name[: MAX_FIELD_NAME_CHARS - 1] + "…"


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, bool | list | str) or value is None:
        return names[type(value)]
    return "a number"
