"""The results format follows the `Accept` header's preferences, q-values included."""

from __future__ import annotations

import pytest

from producer.results import CSV, JSON, NDJSON, media_type


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("text/csv", CSV),
        ("application/x-ndjson", NDJSON),
        ("text/*", CSV),
        ("text/csv;q=0.5, application/json", JSON),
        ("application/json;q=0.1, text/csv", CSV),
        ("application/x-ndjson;q=0.9, text/csv;q=0.8", NDJSON),
        ("*/*;q=0.1, text/csv", CSV),
        ("application/*;q=0.9, text/csv;q=0.5", JSON),  # one range covers both: the envelope
        ("text/csv, application/json", CSV),  # a tie: the one listed first
        ("application/x-ndjson, text/csv", NDJSON),
        ("TEXT/CSV; Q=1", CSV),
        ("text/csv;q=0, */*", JSON),  # q=0: not acceptable
        ("application/json;q=0, text/*;q=0.2", CSV),
        ("text/csv;q=0", JSON),  # nothing acceptable: the envelope
        ("image/png", JSON),
        ("text/csv;q=oops", CSV),  # an unreadable q counts as 1
    ],
)
def test_the_preferred_acceptable_format_is_chosen(accept: str | None, chosen: str) -> None:
    assert media_type(accept) == chosen
