"""CSV cells a spreadsheet will not run: the export's answer to formula injection.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is taken by Excel,
LibreOffice and Google Sheets as a formula (`=HYPERLINK(...)`, `@SUM(...)`, DDE). As OWASP
recommends (CSV Injection), such a cell gets a leading single quote, which makes the
spreadsheet show it as text; a signed number (`-5`, `+1.5`) is left as it is. Used by the
API's `text/csv` results and the CLI's `results --format csv`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SIGNED_NUMBER = re.compile(r"[+-](?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def formula_safe(cell: object) -> object:
    """`cell`, or a text that starts like a formula with a single quote before it."""
    if not isinstance(cell, str) or not cell.startswith(FORMULA_STARTS):
        return cell
    if _SIGNED_NUMBER.fullmatch(cell):
        return cell
    return "'" + cell


class FormulaSafeWriter:
    """`csv.writer(out)` whose every cell goes through `formula_safe` first."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([formula_safe(cell) for cell in row])
