"""Batch files read as streams: a JSON array (sent as is), NDJSON or CSV, and the request body.

Every reader yields one row at a time and holds at most one row (plus a read buffer) in
memory, whatever the file size; the body generator turns rows into the JSON array the API
expects, in pieces of about `PIECE_BYTES`.

The columns (CSV) and members (NDJSON, JSON) a fix-and-resend file adds beside each row,
`ANNOTATIONS`, are left out of what is sent (see `cli.client.fixfile`). A JSON array is sent
as is unless its first row carries them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

from claimpay.csvcells import FORMULA_STARTS
from claimpay.entities import EntitySpec
from cli.client.columns import CellError, Column, entity_columns, required_columns
from cli.client.errors import InputError

ANNOTATIONS = ("row", "line", "error")
"""What a fix-and-resend file adds beside each row; ignored on submit."""
MAX_REPORTED = 20
"""Bad lines listed by a check before "and N more"."""
PIECE_BYTES = 64 * 1024
"""Size of the request body pieces handed to the HTTP client."""
_SNIFF_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
IGNORED = "ignored"
"""The kind of an annotation column: read, never sent."""


class InputFormat(StrEnum):
    """The batch file formats the client reads."""

    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


def detect_format(path: Path) -> InputFormat:
    """The format by suffix (`.csv`, `.ndjson`/`.jsonl`), else by the first character."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return InputFormat.CSV
    if suffix in (".ndjson", ".jsonl"):
        return InputFormat.NDJSON
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES).removeprefix(_BOM).lstrip()
    if head.startswith(b"["):
        return InputFormat.JSON
    if head.startswith(b"{"):
        return InputFormat.NDJSON
    raise InputError(f"cannot tell the format of {path.name}; pass --format json|ndjson|csv")


class BadLines:
    """The bad lines a check found: the first `MAX_REPORTED` kept, the others counted."""

    def __init__(self, limit: int = MAX_REPORTED) -> None:
        self.limit = limit
        self.shown: list[InputError] = []
        self.count = 0

    def add(self, error: InputError) -> None:
        self.count += 1
        if len(self.shown) < self.limit:
            self.shown.append(error)

    def report(self, name: str) -> str:
        """One line per bad line shown (`NAME, line N: ...`), then how many more."""
        lines = [f"{name}, {error}" for error in self.shown]
        if self.count > len(self.shown):
            lines.append(f"... and {self.count - len(self.shown)} more bad lines")
        if self.count > 1:
            lines.append(f"{name}: {self.count} bad lines; nothing was sent")
        return "\n".join(lines)


def ndjson_items(lines: Iterable[bytes], bad: BadLines | None = None) -> Iterator[bytes]:
    """Each non-blank line, checked to be one JSON object, as its bytes (sent unchanged,
    but without `ANNOTATIONS`). A bad line raises `InputError`, or is left out and added
    to `bad` when given."""
    for number, line in enumerate(lines, start=1):
        text = line.removeprefix(_BOM).strip() if number == 1 else line.strip()
        if not text:
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            _bad(InputError(f"not valid JSON ({exc})", number), bad)
            continue
        if not isinstance(value, dict):
            found = _json_kind(value)
            _bad(InputError(f"expected one JSON object, found {found}", number), bad)
            continue
        yield _without_annotations(value) if _annotated(value) else text


def csv_rows(
    lines: Iterable[str], spec: EntitySpec, bad: BadLines | None = None
) -> Iterator[dict[str, Any]]:
    """Each CSV record as a row of typed values; the header names the fields (columns
    named in `ANNOTATIONS` are ignored).

    An empty cell omits its field (see `cli.client.columns`). A record with the wrong
    number of fields or a cell that does not fit its column's type raises `InputError`
    with the record's (first) line number, or is left out and added to `bad` when given.
    A bad header, broken quoting or bytes that are not UTF-8 always raise (what follows
    cannot be read).
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InputError("the file is empty; the first line must be the header", 1)
        columns = _header_columns(header, spec)
        fix_file = "error" in (name.strip() for name in header)
        for line, record in numbered_records(reader):
            try:
                yield _typed_row(columns, _unquoted(record) if fix_file else record, line)
            except InputError as exc:
                _bad(exc, bad)
    except csv.Error as exc:
        raise InputError(f"malformed CSV ({exc})", reader.line_num) from None
    except UnicodeDecodeError:
        raise InputError("the file is not UTF-8 text", reader.line_num + 1) from None


def _unquoted(record: list[str]) -> list[str]:
    """The cells of a fix-and-resend file without the `'` an export put before a cell that
    starts like a formula (`claimpay.csvcells`)."""
    return [
        cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell
        for cell in record
    ]


def _bad(error: InputError, bad: BadLines | None) -> None:
    if bad is None:
        raise error
    bad.add(error)


def _annotated(row: dict[str, Any]) -> bool:
    return any(name in row for name in ANNOTATIONS)


def _without_annotations(row: dict[str, Any]) -> bytes:
    return orjson.dumps({name: value for name, value in row.items() if name not in ANNOTATIONS})


def json_array(items: Iterable[bytes], piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    """The JSON array of `items` (each one encoded JSON value), in pieces."""
    buffer = bytearray(b"[")
    first = True
    for item in items:
        if not first:
            buffer += b","
        buffer += item
        first = False
        if len(buffer) >= piece_bytes:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]"
    yield bytes(buffer)


def file_pieces(handle: BinaryIO, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    """The file's bytes unchanged, in pieces."""
    while piece := handle.read(piece_bytes):
        yield piece


Progress = Callable[[int], None]
"""Told how many bytes of the file have been read so far."""


@dataclass(frozen=True, slots=True)
class BatchFile:
    """A batch file of one entity, in one format: checked, then streamed as the body."""

    path: Path
    spec: EntitySpec
    format: InputFormat

    def check(self, progress: Progress | None = None) -> int | None:
        """Read the whole file once (streaming) and count its rows, so that malformed
        lines stop the submission before anything is sent: `InputError` lists every bad
        line (the first `MAX_REPORTED`). `None` for a JSON array sent as is, which the API
        checks (see `annotated_json`)."""
        if self.format is InputFormat.JSON and not self.annotated_json():
            return None
        rows = 0
        bad = BadLines()
        with self.path.open("rb") as handle:
            for rows, _ in enumerate(self._items(handle, bad), start=1):
                if progress is not None and rows % 1000 == 0:
                    progress(handle.tell())
        if bad.count:
            raise InputError(bad.report(self.path.name))
        return rows

    def annotated_json(self) -> bool:
        """A JSON array whose first row carries `ANNOTATIONS` (a fix-and-resend file): its
        rows are read and sent without them. Any other JSON array is sent as is."""
        with self.path.open("rb") as handle:
            try:
                first = next(ijson.items(handle, "item", use_float=True), None)
            except ijson.JSONError:
                return False  # sent as is: the API says what is wrong with it
        return isinstance(first, dict) and _annotated(first)

    def body(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The request body, a JSON array, produced piece by piece while the file is read."""
        with self.path.open("rb") as handle:
            if self.format is InputFormat.JSON and not self.annotated_json():
                pieces = file_pieces(handle)
            else:
                pieces = json_array(self._items(handle))
            for piece in pieces:
                if progress is not None:
                    progress(handle.tell())
                yield piece

    def _items(self, handle: BinaryIO, bad: BadLines | None = None) -> Iterator[bytes]:
        if self.format is InputFormat.JSON:
            return _array_items(handle)
        if self.format is InputFormat.NDJSON:
            return ndjson_items(handle, bad)
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        return _detached(text, (orjson.dumps(row) for row in csv_rows(text, self.spec, bad)))


def _array_items(handle: BinaryIO) -> Iterator[bytes]:
    """The rows of a JSON array, each encoded again without `ANNOTATIONS`."""
    try:
        for row in ijson.items(handle, "item", use_float=True):
            yield _without_annotations(row) if isinstance(row, dict) else orjson.dumps(row)
    except ijson.JSONError as exc:
        raise InputError(f"not a valid JSON array ({exc})") from None


def _detached(text: io.TextIOWrapper, items: Iterator[bytes]) -> Iterator[bytes]:
    # Detach the wrapper when done so that closing it does not close the caller's handle.
    try:
        yield from items
    finally:
        text.detach()


def numbered_records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Non-blank records with the number of the line each one starts on."""
    while True:
        line = reader.line_num + 1
        record = next(reader, None)
        if record is None:
            return
        if record:
            yield line, record


def _header_columns(header: list[str], spec: EntitySpec) -> list[Column]:
    known = entity_columns(spec)
    names = [name.strip() for name in header]
    unknown = [name for name in names if name not in known and name not in ANNOTATIONS]
    if unknown:
        raise InputError(
            f"unknown column {unknown[0]!r} in the header; the columns of {spec.name} are: "
            + ", ".join(known),
            1,
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"column {repeated[0]!r} appears twice in the header", 1)
    missing = [name for name in required_columns(spec) if name not in names]
    if missing:
        raise InputError(f"the header lacks the required column(s) {', '.join(missing)}", 1)
    return [known.get(name, Column(name, IGNORED)) for name in names]


def _typed_row(columns: list[Column], record: list[str], line: int) -> dict[str, Any]:
    if len(record) != len(columns):
        raise InputError(f"expected {len(columns)} fields, found {len(record)}", line)
    try:
        return {
            column.name: column.convert(cell)
            for column, cell in zip(columns, record, strict=True)
            if cell != "" and column.kind != IGNORED
        }
    except CellError as exc:
        raise InputError(str(exc), line) from None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return "true, false or null"
    return "a number"
