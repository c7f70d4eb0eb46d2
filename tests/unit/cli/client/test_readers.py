"""Batch files are read as streams: typed CSV cells, NDJSON objects, JSON arrays as is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claimpay.entities import CLAIM_PROMPT_PAY, PLACE_CODES
from cli.client.errors import InputError
from cli.client.readers import (
    BatchFile,
    InputFormat,
    csv_rows,
    detect_format,
    json_array,
    ndjson_items,
)

HEADER = (
    "claimPromptPay_Key,group_ID,plan_ID,prompt_Pay_Duration,prompt_Pay_Duration_Type,entry_Date"
)


def csv_lines(*lines: str) -> list[str]:
    return [line + "\r\n" for line in lines]


def read_csv(*lines: str) -> list[dict[str, Any]]:
    return list(csv_rows(csv_lines(*lines), CLAIM_PROMPT_PAY))


def test_csv_cells_become_typed_json_values() -> None:
    rows = read_csv(HEADER, "1,GRP001,PPO,30,D,2024-01-02T03:04:05Z", '2,"G,2",HMO,+45,M,')
    assert rows == [
        {
            "claimPromptPay_Key": 1,
            "group_ID": "GRP001",
            "plan_ID": "PPO",
            "prompt_Pay_Duration": 30,
            "prompt_Pay_Duration_Type": "D",
            "entry_Date": "2024-01-02T03:04:05Z",
        },
        {
            "claimPromptPay_Key": 2,
            "group_ID": "G,2",
            "plan_ID": "HMO",
            "prompt_Pay_Duration": 45,
            "prompt_Pay_Duration_Type": "M",
        },
    ]


def test_an_empty_csv_cell_omits_the_field_rather_than_sending_null() -> None:
    [row] = read_csv(HEADER, "7,,,,,")
    assert row == {"claimPromptPay_Key": 7}


def test_csv_booleans_of_place_codes_are_json_booleans() -> None:
    lines = csv_lines(
        "place_Code,all_Places,exclude_Proc_Auth,description",
        "11,N,true,Office",
        "21,Y,0,",
        "22,Y, No ,Outpatient",
    )
    rows = list(csv_rows(lines, PLACE_CODES))
    assert [row["exclude_Proc_Auth"] for row in rows] == [True, False, False]
    assert rows[1] == {"place_Code": "21", "all_Places": "Y", "exclude_Proc_Auth": False}


def test_a_non_integer_in_an_integer_column_names_its_line_and_column() -> None:
    with pytest.raises(InputError, match=r"line 3: column prompt_Pay_Duration: '3O'") as info:
        read_csv(HEADER, "1,G,P,30,D,", "2,G,P,3O,D,")
    assert info.value.line == 3


def test_a_record_with_the_wrong_number_of_fields_names_its_line() -> None:
    with pytest.raises(InputError, match=r"^line 4: expected 6 fields, found 7$"):
        read_csv(HEADER, "1,G,P,30,D,", "", "3,G,P,30,D,,extra")


def test_line_numbers_count_the_lines_of_quoted_multi_line_cells() -> None:
    with pytest.raises(InputError, match=r"^line 4: column claimPromptPay_Key"):
        read_csv(HEADER, '1,"two', 'lines",P,30,D,', "x,G,P,30,D,")


def test_a_bad_boolean_is_reported_with_its_line() -> None:
    lines = csv_lines("place_Code,all_Places,exclude_Proc_Auth", "11,N,maybe")
    with pytest.raises(InputError, match=r"line 2: column exclude_Proc_Auth: 'maybe'"):
        list(csv_rows(lines, PLACE_CODES))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("claimPromptPay_Key,group_id", r"unknown column 'group_id'"),
        ("claimPromptPay_Key,plan_ID,plan_ID", r"'plan_ID' appears twice"),
        ("group_ID,plan_ID", r"lacks the required column\(s\) claimPromptPay_Key"),
    ],
)
def test_a_bad_header_is_refused_on_line_1(header: str, message: str) -> None:
    with pytest.raises(InputError, match=r"^line 1: .*" + message):
        read_csv(header, "1,x,y")


def test_an_empty_csv_file_is_refused() -> None:
    with pytest.raises(InputError, match="empty"):
        read_csv()


def test_unterminated_quotes_are_malformed_csv() -> None:
    with pytest.raises(InputError, match=r"malformed CSV"):
        read_csv(HEADER, '1,"G,P,30,D,')


def test_csv_rows_are_read_lazily_one_record_at_a_time() -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        yield HEADER + "\n"
        key = 0
        while True:
            pulled += 1
            key += 1
            yield f"{key},G,P,30,D,\n"

    rows = csv_rows(endless(), CLAIM_PROMPT_PAY)
    assert [next(rows)["claimPromptPay_Key"] for _ in range(3)] == [1, 2, 3]
    assert pulled <= 4


def test_ndjson_lines_are_checked_and_sent_unchanged() -> None:
    lines = [b'\xef\xbb\xbf{"claimPromptPay_Key": 1}\n', b"\n", b'  {"claimPromptPay_Key":2}  \n']
    assert list(ndjson_items(lines)) == [b'{"claimPromptPay_Key": 1}', b'{"claimPromptPay_Key":2}']


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        (b'{"claimPromptPay_Key": 2,', r"^line 3: not valid JSON"),
        (b"[1, 2]", r"^line 3: expected one JSON object, found an array"),
        (b"42", r"^line 3: expected one JSON object, found a number"),
    ],
)
def test_a_bad_ndjson_line_is_reported_with_its_number(bad_line: bytes, message: str) -> None:
    lines = [b'{"claimPromptPay_Key": 1}\n', b"\n", bad_line + b"\n"]
    with pytest.raises(InputError, match=message):
        list(ndjson_items(lines))


def test_ndjson_lines_are_read_lazily() -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b'{"claimPromptPay_Key": %d}\n' % pulled

    items = ndjson_items(endless())
    next(items), next(items)
    assert pulled == 2


def test_the_body_is_a_json_array_produced_in_bounded_pieces() -> None:
    items = (b'{"k":%d}' % i for i in range(1000))
    pieces = list(json_array(items, piece_bytes=256))
    assert json.loads(b"".join(pieces)) == [{"k": i} for i in range(1000)]
    assert max(len(piece) for piece in pieces) < 256 + 16
    assert list(json_array(iter(()))) == [b"[]"]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("rows.csv", "claimPromptPay_Key\n1\n", InputFormat.CSV),
        ("rows.ndjson", '{"a": 1}\n', InputFormat.NDJSON),
        ("rows.jsonl", '{"a": 1}\n', InputFormat.NDJSON),
        ("rows.json", '\n  [{"a": 1}]', InputFormat.JSON),
        ("rows.json", '{"a": 1}\n{"a": 2}\n', InputFormat.NDJSON),
        ("rows.txt", "\ufeff[]", InputFormat.JSON),
    ],
)
def test_the_format_is_told_by_suffix_then_by_content(
    tmp_path: Path, name: str, content: str, expected: InputFormat
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert detect_format(path) is expected


def test_an_unknown_format_asks_for_format(tmp_path: Path) -> None:
    path = tmp_path / "rows.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(InputError, match="--format"):
        detect_format(path)


def test_a_csv_file_is_checked_then_sent_as_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("\ufeff" + HEADER + "\n" + "".join(f"{k},G,P,30,D,\n" for k in range(1, 2501)))
    batch = BatchFile(path, CLAIM_PROMPT_PAY, InputFormat.CSV)
    seen: list[int] = []
    assert batch.check() == 2500
    body = b"".join(batch.body(seen.append))
    rows = json.loads(body)
    assert [row["claimPromptPay_Key"] for row in rows] == list(range(1, 2501))
    assert seen[-1] == path.stat().st_size


def test_a_malformed_csv_line_fails_the_check_before_any_body_is_made(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + "\n1,G,P,30,D,\n2,G,P,thirty,D,\n")
    with pytest.raises(InputError, match=r"^rows.csv, line 3: "):
        BatchFile(path, CLAIM_PROMPT_PAY, InputFormat.CSV).check()


def test_a_json_array_file_is_sent_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    content = b'[ {"claimPromptPay_Key": 1},\n {"claimPromptPay_Key": 2} ]'
    path.write_bytes(content)
    batch = BatchFile(path, CLAIM_PROMPT_PAY, InputFormat.JSON)
    assert batch.check() is None
    assert b"".join(batch.body()) == content


def test_an_ndjson_file_is_sent_as_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_bytes(b'{"claimPromptPay_Key": 1}\n\n{"claimPromptPay_Key": 2}\n')
    batch = BatchFile(path, CLAIM_PROMPT_PAY, InputFormat.NDJSON)
    assert batch.check() == 2
    assert json.loads(b"".join(batch.body())) == [
        {"claimPromptPay_Key": 1},
        {"claimPromptPay_Key": 2},
    ]


def test_an_ndjson_check_lists_every_bad_line_then_refuses(tmp_path: Path) -> None:
    path = tmp_path / "rows.ndjson"
    path.write_text('{"claimPromptPay_Key": 1}\n[1]\n\n{oops\n{"claimPromptPay_Key": 2}\n"x"\n')
    with pytest.raises(InputError) as refused:
        BatchFile(path, CLAIM_PROMPT_PAY, InputFormat.NDJSON).check()
    lines = str(refused.value).splitlines()
    assert lines[0] == "rows.ndjson, line 2: expected one JSON object, found an array"
    assert lines[1].startswith("rows.ndjson, line 4: not valid JSON")
    assert lines[2] == "rows.ndjson, line 6: expected one JSON object, found a string"
    assert lines[3] == "rows.ndjson: 3 bad lines; nothing was sent"


def test_ndjson_annotations_are_left_out_of_what_is_sent() -> None:
    lines = [b'{"row": 3, "error": "x", "line": 4, "claimPromptPay_Key": 9}\n', b'{"a": 1}\n']
    assert list(ndjson_items(lines)) == [b'{"claimPromptPay_Key":9}', b'{"a": 1}']


def test_a_broken_annotated_json_array_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "fix.json"
    path.write_text('[{"row": 1, "error": "x", "claimPromptPay_Key": 1}, {"claimPromptPay_')
    with pytest.raises(InputError, match="not a valid JSON array"):
        BatchFile(path, CLAIM_PROMPT_PAY, InputFormat.JSON).check()
    broken = tmp_path / "broken.json"
    broken.write_text("[{oops")
    assert BatchFile(broken, CLAIM_PROMPT_PAY, InputFormat.JSON).check() is None  # API's call
