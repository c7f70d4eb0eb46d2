"""The bodies the bench was not tuned for: each is one JSON array of the batch's rows (the
same keys, in order), written its own way, and every row is one claimpay accepts."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from bench.loader import loader_rows, prepare_batch
from bench.variants import SMALL_ROWS, VARIANTS, Variant, prepare_variant
from claimpay.entities import CLAIM_PROMPT_PAY
from claimpay.rows import validate_items

ROWS = 4_501  # more than two pieces of `PIECE_ROWS`


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)
def test_a_variant_is_the_batch_written_another_way(tmp_path: Path, variant: Variant) -> None:
    batch = prepare_batch(tmp_path, "b", ROWS, first_key=10, seed=3)
    prepared = prepare_variant(tmp_path, variant, batch)
    body = prepared.body()
    rows = json.loads(body)
    expected = list(loader_rows(prepared.rows, 10, seed=3))
    assert prepared.rows == len(rows) == (ROWS if variant.rows is None else min(SMALL_ROWS, ROWS))
    assert prepared.body_bytes == len(body)
    assert [row["claimPromptPay_Key"] for row in rows] == [
        row["claimPromptPay_Key"] for row in expected
    ]
    items = orjson.dumps(list(enumerate(rows)))
    assert validate_items(CLAIM_PROMPT_PAY, items) is not None  # every row valid
    if variant.name != "sparse":
        assert [set(row) for row in rows] == [set(row) for row in expected]


def test_the_variants_differ_from_the_main_body_as_they_say(tmp_path: Path) -> None:
    batch = prepare_batch(tmp_path, "b", ROWS, first_key=10, seed=3)
    bodies = {v.name: prepare_variant(tmp_path, v, batch).body() for v in VARIANTS}
    main = batch.body()
    assert b" " not in bodies["compact"]
    assert b", " in main
    assert bodies["indented_crlf"].count(b"\r\n") > ROWS * 11
    assert bodies["shuffled"] != bodies["compact"]
    assert len(bodies["shuffled"]) == len(bodies["compact"])
    assert len(bodies["sparse"]) < len(main) * 0.8
    assert all(
        len(row["update_Date"]) == 28 and row["update_Date"].endswith("Z")
        for row in json.loads(bodies["dotnet_dates"])
    )
