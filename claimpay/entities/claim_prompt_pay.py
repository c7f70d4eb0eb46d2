"""The ClaimPromptPay row, exactly as `PUT /claim-prompt-pays-batch` receives it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from claimpay.entities.base import AuditedRow, Int32


class ClaimPromptPayIn(AuditedRow):
    """One prompt-pay rule: how long the administrator has to pay a clean claim, for a scope."""

    claim_prompt_pay_key: Annotated[Int32, Field(alias="claimPromptPay_Key")]
    division_id: Annotated[StrictStr | None, Field(alias="division_ID", max_length=20)] = None
    group_id: Annotated[StrictStr | None, Field(alias="group_ID", max_length=20)] = None
    plan_id: Annotated[StrictStr | None, Field(alias="plan_ID", max_length=20)] = None
    prompt_pay_duration: Annotated[
        StrictInt | None, Field(alias="prompt_Pay_Duration", ge=0, le=2**31 - 1)
    ] = None
    prompt_pay_duration_type: Annotated[
        Literal["D", "M", "Y"] | None, Field(alias="prompt_Pay_Duration_Type")
    ] = None
    tax_id: Annotated[StrictStr | None, Field(alias="tax_ID", max_length=32)] = None
