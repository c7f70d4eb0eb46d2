"""Where each row of a batch file starts: its line number, read again from the file.

The rows of a job are numbered by their position in the submitted array (`row`, 1-based);
a file's line number is what a person looks for in an editor. Both readers below count rows
exactly as the submit command reads them (blank lines and, in CSV, the header are no rows).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cli.client.readers import InputFormat, numbered_records

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]|[^\s\[\]{},"]+')
"""A JSON token of one line (a JSON string never holds a raw line break)."""


def row_lines(path: Path, form: InputFormat) -> Iterator[int]:
    """The line on which each row of the file starts, in row order, read as a stream."""
    with path.open("rb") as handle:
        if form is InputFormat.CSV:
            text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
            reader = csv.reader(text, strict=True)
            if next(reader, None) is not None:
                for line, _ in numbered_records(reader):
                    yield line
        elif form is InputFormat.NDJSON:
            for number, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield number
        else:
            yield from _json_array_lines(handle)


def _json_array_lines(lines: Iterable[bytes]) -> Iterator[int]:
    depth = 0
    expecting = False
    for number, line in enumerate(lines, start=1):
        for match in _TOKEN.finditer(line):
            token = match.group()
            if expecting and token != b"]":
                yield number
            expecting = False
            if token in (b"[", b"{"):
                depth += 1
                expecting = depth == 1 and token == b"["
            elif token in (b"]", b"}"):
                depth -= 1
            elif token == b"," and depth == 1:
                expecting = True


def with_lines(items: Iterable[dict[str, Any]], lines: Iterator[int]) -> Iterator[dict[str, Any]]:
    """Each result item (in row order) with the line of its row added as `line` (None when
    the file has fewer rows than the job)."""
    current_row, current_line = 0, None
    for item in items:
        row = int(item.get("row") or 0)
        while current_row < row:
            current_line = next(lines, None)
            current_row += 1
        yield {**item, "line": current_line if current_row == row else None}
