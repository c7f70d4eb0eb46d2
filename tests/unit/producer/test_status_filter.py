"""`status=` (results) and `statuses=` (retry): HTTP codes and classes, anything else 400."""

from __future__ import annotations

import pytest

from producer.errors import InvalidStatusFilter
from producer.results import parse_status_filter


def test_codes_and_classes_select_statuses() -> None:
    keep = parse_status_filter("503, 4xx")
    assert keep is not None
    assert [code for code in (200, 400, 422, 500, 503) if keep(code)] == [400, 422, 503]


@pytest.mark.parametrize(
    "text",
    [
        "\u00b2\u00b2\u00b2",  # superscript digits: str.isdigit() says yes, int() says no
        "\u0665\u0660\u0663",  # Arabic-Indic 503
        "9" * 5000,  # beyond int()'s digit limit
        "0503",
        "5x",
        "600",
        "99",
    ],
)
def test_anything_but_ascii_codes_and_classes_is_an_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidStatusFilter):  # a 400 problem at the edge
        parse_status_filter(text)
