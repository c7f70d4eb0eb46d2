"""The fix-and-resend file: a job's failed rows as they were sent, the error beside each.

Like Salesforce Bulk's failed-results file (the original fields and the error), and made to
be submitted again: `row` (the 1-based position in the job), `line` (with line numbers) and
`error` come first; `claimpay submit` ignores them (`readers.ANNOTATIONS`).

- CSV: `row,error,` then every field of the entity (the key first, the audit fields
  `entry_*`/`update_*` last), then any other member
  a row was sent with (so an unknown field shows, and is refused until renamed). A cell
  holds the value as the CSV reader reads it back: text as is, numbers, `true`/`false`;
  null and an absent field leave it empty (an empty cell omits the field). A cell that
  starts like a formula gets a leading `'` (`claimpay.csvcells`, as in every CSV export),
  which the submit command takes off again in a file with an `error` column.
- NDJSON and JSON: one object per row, `{"row", "error", ...the row as sent}`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson

from claimpay.csvcells import FormulaSafeWriter
from claimpay.entities import EntitySpec
from cli.client.columns import entity_columns
from cli.client.results import ResultItem, write_ndjson

NOT_KEPT = "(the row as sent is no longer kept)"


class FixRows:
    """The fix rows of result items that carry `input`; counts the rows it could not
    read back (their row is written with the error only)."""

    def __init__(self, items: Iterable[ResultItem], with_lines: bool = False) -> None:
        self._items = items
        self.with_lines = with_lines
        self.not_kept = 0

    def annotations(self) -> tuple[str, ...]:
        return ("row", "line", "error") if self.with_lines else ("row", "error")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self._items:
            sent = item.get("input")
            error = str(item.get("body") or "")
            if sent is None:
                self.not_kept += 1
                error = f"{error} {NOT_KEPT}".strip()
            fixed: dict[str, Any] = {"row": item.get("row")}
            if self.with_lines:
                fixed["line"] = item.get("line")
            fixed["error"] = error
            if isinstance(sent, dict):
                fixed.update((k, v) for k, v in sent.items() if k not in fixed)
            yield fixed


write_fix_ndjson = write_ndjson
"""The fix-and-resend rows, one JSON object a line (as the results are written)."""


def write_fix_json(rows: FixRows, out: IO[bytes]) -> int:
    out.write(b"[")
    count = 0
    for row in rows:
        out.write(b",\n" if count else b"\n")
        out.write(orjson.dumps(row))
        count += 1
    out.write(b"\n]\n")
    return count


def write_fix_csv(rows: FixRows, out: IO[str], spec: EntitySpec) -> int:
    """Two passes over a spooled copy: the columns are known only once every row is read."""
    fields = field_order(spec)
    annotations = rows.annotations()
    extra: dict[str, None] = {}
    count = 0
    with tempfile.TemporaryFile() as spool:
        for row in rows:
            extra.update((k, None) for k in row if k not in annotations and k not in fields)
            spool.write(orjson.dumps(row) + b"\n")
            count += 1
        spool.seek(0)
        columns = [*annotations, *fields, *extra]
        writer = FormulaSafeWriter(out)
        writer.writerow(columns)
        for line in spool:
            row = orjson.loads(line)
            writer.writerow([_cell(row.get(column)) for column in columns])
    return count


def field_order(spec: EntitySpec) -> list[str]:
    """The key first, then the entity's fields in their order, the audit fields last."""
    names = list(entity_columns(spec))
    return sorted(names, key=lambda n: (n != spec.key_field, n.startswith(("entry_", "update_"))))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)
