"""Batch entities: what the generic pipeline needs to know about one kind of row.

An entity is declared once (`EntitySpec`) and registered here; the producer derives its
`PUT /<name>-batch` route from it and the worker its upsert, so a second entity is a small
declarative addition: a row model, a spec, a table and a migration.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from claimpay.entities.claim_prompt_pay import ClaimPromptPayIn
from claimpay.entities.place_codes import PlaceCodesIn


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """How one batch entity maps the wire (JSON names) to the table (column names)."""

    name: str
    """Plural, kebab-case resource name; the batch route is `/{name}-batch`."""
    row_model: type[BaseModel]
    """Pydantic model of one input row; field aliases are the exact JSON names."""
    table: str
    """SQL table the rows are upserted into (the worker owns its definition)."""
    key_field: str
    """JSON name of the primary-key field; it names the id in each envelope item."""
    key_type: type[int] | type[str] = int
    """JSON type of the key: a 32-bit integer or a string."""

    @property
    def batch_path(self) -> str:
        return f"/{self.name}-batch"

    @property
    def key_column(self) -> str:
        """The column (model attribute) behind `key_field`."""
        for attr, field in self.row_model.model_fields.items():
            if (field.alias or attr) == self.key_field:
                return attr
        raise LookupError(self.key_field)


CLAIM_PROMPT_PAY = EntitySpec(
    name="claim-prompt-pays",
    row_model=ClaimPromptPayIn,
    table="claim_prompt_pay",
    key_field="claimPromptPay_Key",
)

PLACE_CODES = EntitySpec(
    name="place-codes",
    row_model=PlaceCodesIn,
    table="place_codes",
    key_field="place_Code",
    key_type=str,
)

ENTITIES: dict[str, EntitySpec] = {spec.name: spec for spec in (CLAIM_PROMPT_PAY, PLACE_CODES)}


def get_entity(name: str) -> EntitySpec:
    """The registered entity called `name`; `KeyError` when there is none."""
    return ENTITIES[name]
