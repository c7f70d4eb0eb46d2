"""The fix-and-resend file: failed rows as sent with `row` and `error`, in CSV, NDJSON or
JSON, read back by the submit command without those columns; line numbers of rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimpay.entities import CLAIM_PROMPT_PAY, ENTITIES
from cli.client.columns import entity_columns
from cli.client.fixfile import FixRows, field_order, write_fix_csv, write_fix_json, write_fix_ndjson
from cli.client.lines import row_lines, with_lines
from cli.client.readers import ANNOTATIONS, BatchFile, InputFormat
from cli.client.state import SubmittedFile, recall, remember


def failed(row: int, body: str, sent: Any) -> dict[str, Any]:
    key = sent.get("claimPromptPay_Key") if isinstance(sent, dict) else None
    return {
        "row": row,
        "id": [{"key": "claimPromptPay_Key", "value": key}],
        "status": 400,
        "body": body,
        "input": sent,
    }


FAILED = [
    failed(2, "claimPromptPay_Key: is required", {"group_ID": "G, 2", "plan_ID": "PPO"}),
    failed(5, "prompt_Pay_Duration: bad", {"claimPromptPay_Key": 5, "prompt_Pay_Duration": 1.5}),
    failed(7, "groupId: Extra inputs are not permitted", {"claimPromptPay_Key": 7, "groupId": 1}),
    failed(9, "Not processed: job cancelled", None),
]


def body_rows(path: Path, form: InputFormat) -> list[Any]:
    batch = BatchFile(path, CLAIM_PROMPT_PAY, form)
    batch.check()
    return list(orjson.loads(b"".join(batch.body())))


def test_no_entity_has_a_field_named_like_an_annotation() -> None:
    for spec in ENTITIES.values():
        assert not set(entity_columns(spec)) & set(ANNOTATIONS)


def test_csv_fix_file_has_row_error_every_field_and_unknown_members() -> None:
    out = io.StringIO()
    rows = FixRows(FAILED)
    assert write_fix_csv(rows, out, CLAIM_PROMPT_PAY) == 4
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    header = next(csv.reader(io.StringIO(out.getvalue())))
    assert header[:2] == ["row", "error"]
    assert header[2:-1] == field_order(CLAIM_PROMPT_PAY)
    assert header[2] == "claimPromptPay_Key"
    assert sorted(header[2:-1]) == sorted(entity_columns(CLAIM_PROMPT_PAY))
    assert header[-1] == "groupId"
    assert (table[0]["row"], table[0]["error"]) == ("2", "claimPromptPay_Key: is required")
    assert (table[0]["group_ID"], table[0]["claimPromptPay_Key"]) == ("G, 2", "")
    assert table[2]["groupId"] == "1"
    assert table[3]["error"] == "Not processed: job cancelled (the row as sent is no longer kept)"
    assert rows.not_kept == 1


def test_a_corrected_csv_fix_file_is_submitted_without_its_annotations(tmp_path: Path) -> None:
    out = io.StringIO()
    too_long = failed(4, "tax_ID: too long", {"claimPromptPay_Key": 4, "tax_ID": "9" * 40})
    write_fix_csv(FixRows([FAILED[0], too_long]), out, CLAIM_PROMPT_PAY)
    fixed = out.getvalue().replace("2,claimPromptPay_Key: is required,", "2,whatever,12")
    path = tmp_path / "fix.csv"
    path.write_text(fixed, encoding="utf-8")
    assert body_rows(path, InputFormat.CSV) == [
        {"claimPromptPay_Key": 12, "group_ID": "G, 2", "plan_ID": "PPO"},
        {"claimPromptPay_Key": 4, "tax_ID": "9" * 40},  # as it was: the API says what is wrong
    ]


@pytest.mark.parametrize(
    ("writer", "form", "name"),
    [
        (write_fix_ndjson, InputFormat.NDJSON, "fix.ndjson"),
        (write_fix_json, InputFormat.JSON, "fix.json"),
    ],
)
def test_json_fix_files_hold_the_rows_as_sent_and_go_back_without_annotations(
    tmp_path: Path, writer: Any, form: InputFormat, name: str
) -> None:
    out = io.BytesIO()
    assert writer(FixRows(FAILED[:3]), out) == 3
    path = tmp_path / name
    path.write_bytes(out.getvalue())
    if form is InputFormat.JSON:
        first = json.loads(out.getvalue())[0]
    else:
        first = json.loads(out.getvalue().splitlines()[0])
    assert first == {"row": 2, "error": "claimPromptPay_Key: is required", **FAILED[0]["input"]}
    assert body_rows(path, form) == [item["input"] for item in FAILED[:3]]


def test_a_plain_json_array_is_still_sent_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "plain.json"
    path.write_bytes(b'[ {"claimPromptPay_Key": 1,  "error_free": 1} ]')
    batch = BatchFile(path, CLAIM_PROMPT_PAY, InputFormat.JSON)
    assert batch.check() is None
    assert b"".join(batch.body()) == path.read_bytes()


def test_line_numbers_of_csv_ndjson_and_json_rows(tmp_path: Path) -> None:
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text('claimPromptPay_Key,group_ID\n1,a\n\n2,"multi\nline"\n3,c\n')
    assert list(row_lines(csv_path, InputFormat.CSV)) == [2, 4, 6]
    ndjson_path = tmp_path / "rows.ndjson"
    ndjson_path.write_text('{"a": 1}\n\n  \n{"a": 2}\n{"a": 3}\n')
    assert list(row_lines(ndjson_path, InputFormat.NDJSON)) == [1, 4, 5]
    json_path = tmp_path / "rows.json"
    json_path.write_text(
        '[\n  {"a": "x, ] { \\" y",\n   "b": [1, 2]},\n  {"a": 2}, 42,\n\n  {\n"c": {}}\n]\n'
    )
    assert list(row_lines(json_path, InputFormat.JSON)) == [2, 4, 4, 6]
    one_line = tmp_path / "one.json"
    one_line.write_text('[{"a": 1},{"a": 2}]')
    assert list(row_lines(one_line, InputFormat.JSON)) == [1, 1]
    empty = tmp_path / "empty.json"
    empty.write_text("[ ]")
    assert list(row_lines(empty, InputFormat.JSON)) == []


def test_results_get_the_line_of_their_row() -> None:
    items = [{"row": 2}, {"row": 3}, {"row": 6}]
    assert [item["line"] for item in with_lines(items, iter([10, 20, 30, 40]))] == [20, 30, None]


def test_the_submitted_file_is_remembered_per_job(tmp_path: Path) -> None:
    source = tmp_path / "batch.csv"
    source.write_text("claimPromptPay_Key\n1\n")
    state = tmp_path / "state" / "jobs.json"
    remember("a" * 32, SubmittedFile.of(source, "csv", "claim-prompt-pays"), state)
    found = recall("a" * 32, state)
    assert found is not None
    assert (Path(found.path), found.format, found.changed()) == (source.resolve(), "csv", False)
    assert recall("b" * 32, state) is None
    source.write_text("claimPromptPay_Key\n1\n2\n")
    assert found.changed()


def test_a_formula_like_cell_is_neutralised_in_the_fix_file_and_restored_on_submit(
    tmp_path: Path,
) -> None:
    sent = {"claimPromptPay_Key": 8, "group_ID": "=HYPERLINK(1)", "plan_ID": "-PPO"}
    out = io.StringIO()
    write_fix_csv(FixRows([failed(3, "=SUM(A1)", sent)]), out, CLAIM_PROMPT_PAY)
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (table[0]["group_ID"], table[0]["plan_ID"]) == ("'=HYPERLINK(1)", "'-PPO")
    assert table[0]["error"] == "'=SUM(A1)"
    path = tmp_path / "fix.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    assert body_rows(path, InputFormat.CSV) == [sent]
