"""The ClaimPromptPay row, exactly as `PUT /claim-prompt-pays-batch` receives it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from claimpay.entities.base import AuditedRow, Int32


class ClaimPromptPayIn(AuditedRow):
    """One prompt-pay rule: how long the administrator has to pay a clean claim, for a scope."""

    # Descriptions: the seed API's own (shared/seed), shown in the OpenAPI document.
    claim_prompt_pay_key: Annotated[
        Int32,
        Field(
            alias="claimPromptPay_Key",
            description="Unique identifier for each claim prompt pay entry (required): a row "
            "with a new key is created, one with an existing key updated.",
        ),
    ]
    division_id: Annotated[
        StrictStr | None,
        Field(
            alias="division_ID",
            max_length=20,
            description="The patients (or Subscribers) enrollment information, references "
            "Subenrollment.Division_ID.",
        ),
    ] = None
    group_id: Annotated[
        StrictStr | None,
        Field(
            alias="group_ID",
            max_length=20,
            description="The patients (or Subscribers) enrollment information, references "
            "Subenrollment.Group_ID.",
        ),
    ] = None
    plan_id: Annotated[
        StrictStr | None,
        Field(
            alias="plan_ID",
            max_length=20,
            description="Holds the plan the patient is enrolled in and that benefits are assigned.",
        ),
    ] = None
    prompt_pay_duration: Annotated[
        StrictInt | None,
        Field(
            alias="prompt_Pay_Duration",
            ge=0,
            le=2**31 - 1,
            description="Holds the length of the duration to define this prompt pay record, "
            "as a numeric value only.",
        ),
    ] = None
    prompt_pay_duration_type: Annotated[
        Literal["D", "M", "Y"] | None,
        Field(
            alias="prompt_Pay_Duration_Type",
            description="Defines the type of duration used in configuration. D = Day, "
            "M = Month, Y = Year.",
        ),
    ] = None
    tax_id: Annotated[
        StrictStr | None,
        Field(
            alias="tax_ID",
            max_length=32,
            description="Holds the Tax_ID (Federal_ID) of the provider for this record.",
        ),
    ] = None
