"""The PlaceCodes row (places of service), as `PUT /place-codes-batch` receives it.

The second batch entity, with a text key. Field names follow the API family's JSON
convention; the public material gives no lengths, so these are our **decision**:
`place_Code`/`old_Place_Code` 8, `all_Places` 1, `description` 256.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool, StrictStr

from claimpay.entities.base import AuditedRow


class PlaceCodesIn(AuditedRow):
    """A place-of-service code (e.g. `11` office, `21` inpatient hospital)."""

    place_code: Annotated[
        StrictStr,
        Field(
            alias="place_Code",
            min_length=1,
            max_length=8,
            description="The place-of-service code, unique (required): e.g. 11 office, "
            "21 inpatient hospital.",
        ),
    ]
    all_places: Annotated[
        StrictStr,
        Field(
            alias="all_Places",
            min_length=1,
            max_length=1,
            description="The All Places flag, one character, stored as sent (required).",
        ),
    ]
    exclude_proc_auth: Annotated[
        StrictBool,
        Field(
            alias="exclude_Proc_Auth",
            description="The Exclude Procedure Authorization flag, true or false (required).",
        ),
    ]
    description: Annotated[
        StrictStr | None,
        Field(alias="description", max_length=256, description="What the place of service is."),
    ] = None
    old_place_code: Annotated[
        StrictStr | None,
        Field(
            alias="old_Place_Code",
            max_length=8,
            description="The earlier place code of this place of service, if any.",
        ),
    ] = None
