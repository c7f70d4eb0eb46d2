"""Batch files read as streams: a JSON array (sent as is), NDJSON or CSV, and the request body.

Every reader yields one row at a time and holds at most one row (plus a read buffer) in
memory, whatever the file size; the body generator turns rows into the JSON array the API
expects, in pieces of about `PIECE_BYTES`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from claimpay.entities import EntitySpec
from cli.client.columns import CellError, Column, entity_columns, required_columns
from cli.client.errors import InputError

PIECE_BYTES = 64 * 1024
"""Size of the request body pieces handed to the HTTP client."""
_SNIFF_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"


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


def ndjson_items(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Each non-blank line, checked to be one JSON object, as its bytes (sent unchanged)."""
    for number, line in enumerate(lines, start=1):
        text = line.removeprefix(_BOM).strip() if number == 1 else line.strip()
        if not text:
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc})", number) from None
        if not isinstance(value, dict):
            raise InputError(f"expected one JSON object, found {_json_kind(value)}", number)
        yield text


def csv_rows(lines: Iterable[str], spec: EntitySpec) -> Iterator[dict[str, Any]]:
    """Each CSV record as a row of typed values; the header names the fields.

    An empty cell omits its field (see `cli.client.columns`). A record with the wrong
    number of fields, a cell that does not fit its column's type or broken quoting raises
    `InputError` with the record's (first) line number.
    """
    reader = csv.reader(lines, strict=True)
    line = 1
    try:
        header = next(reader, None)
        if header is None:
            raise InputError("the file is empty; the first line must be the header", 1)
        columns = _header_columns(header, spec)
        for line, record in _numbered(reader):
            yield _typed_row(columns, record, line)
    except csv.Error as exc:
        raise InputError(f"malformed CSV ({exc})", reader.line_num) from None
    except UnicodeDecodeError:
        raise InputError("the file is not UTF-8 text", reader.line_num + 1) from None


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
        """Read the whole file once (streaming) and count its rows, so that a malformed
        line stops the submission before anything is sent. `None` for a JSON array, which
        is sent as is and checked by the API."""
        if self.format is InputFormat.JSON:
            return None
        rows = 0
        with self.path.open("rb") as handle:
            for rows, _ in enumerate(self._items(handle), start=1):
                if progress is not None and rows % 1000 == 0:
                    progress(handle.tell())
        return rows

    def body(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The request body, a JSON array, produced piece by piece while the file is read."""
        with self.path.open("rb") as handle:
            if self.format is InputFormat.JSON:
                pieces = file_pieces(handle)
            else:
                pieces = json_array(self._items(handle))
            for piece in pieces:
                if progress is not None:
                    progress(handle.tell())
                yield piece

    def _items(self, handle: BinaryIO) -> Iterator[bytes]:
        if self.format is InputFormat.NDJSON:
            return ndjson_items(handle)
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        return _detached(text, (orjson.dumps(row) for row in csv_rows(text, self.spec)))


def _detached(text: io.TextIOWrapper, items: Iterator[bytes]) -> Iterator[bytes]:
    # Detach the wrapper when done so that closing it does not close the caller's handle.
    try:
        yield from items
    finally:
        text.detach()


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
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
    unknown = [name for name in names if name not in known]
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
    return [known[name] for name in names]


def _typed_row(columns: list[Column], record: list[str], line: int) -> dict[str, Any]:
    if len(record) != len(columns):
        raise InputError(f"expected {len(columns)} fields, found {len(record)}", line)
    try:
        return {
            column.name: column.convert(cell)
            for column, cell in zip(columns, record, strict=True)
            if cell != ""
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
