"""Reading a job's results: filtered by status, paged, as the 207 envelope, CSV or NDJSON,
streamed a chunk at a time whatever the job's size.

CSV and NDJSON carry each row's 1-based position in the submitted array (`row`); the
envelope stays the seed API's. `include=input` adds the row as it was sent (`input`).
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from fastapi.responses import StreamingResponse

from claimpay.csvcells import FormulaSafeWriter
from claimpay.entities import get_entity
from claimpay.envelope import Outcome, expand, is_success, stream_envelope
from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore
from producer.errors import InvalidStatusFilter
from producer.inputs import with_inputs

CSV = "text/csv"
NDJSON = "application/x-ndjson"
JSON = "application/json"

StatusFilter = Callable[[int], bool]


def parse_status_filter(text: str | None) -> StatusFilter | None:
    """`failed` (not 2xx), `succeeded` (2xx), or codes and classes: `503,409` or `5xx`."""
    if not text:
        return None
    if text == "failed":
        return lambda status: not is_success(status)
    if text == "succeeded":
        return is_success
    codes: set[int] = set()
    for part in text.split(","):
        part = part.strip().lower()
        if len(part) == 3 and part.endswith("xx") and part[0] in "12345":
            codes.update(range(int(part[0]) * 100, int(part[0]) * 100 + 100))
        elif len(part) == 3 and part.isascii() and part.isdigit() and 100 <= int(part) <= 599:
            codes.add(int(part))
        else:
            raise InvalidStatusFilter(
                "status: use failed, succeeded, or HTTP codes and classes such as 503,4xx."
            )
    return codes.__contains__


OFFERED = (JSON, CSV, NDJSON)
"""The results formats; the envelope answers when the header accepts none of them."""


def media_type(accept: str | None) -> str:
    """The results format the client prefers by its `Accept` header (RFC 9110): the
    highest `q`, then a specific type before a wildcard, then the one listed first; `q=0`
    refuses. CSV, NDJSON or the JSON envelope, which also answers when none fits."""
    weights = {offer: _weight(accept or "", offer) for offer in OFFERED}
    acceptable = [offer for offer in OFFERED if weights[offer][0] > 0]
    return max(acceptable, key=lambda offer: weights[offer]) if acceptable else JSON


def _weight(accept: str, offer: str) -> tuple[float, int, int]:
    """`(q, specificity, -position)` of the most specific range in `accept` covering
    `offer`."""
    kind = offer.split("/")[0]
    found: tuple[int, float, int] | None = None
    for position, part in enumerate(accept.lower().split(",")):
        media, *params = (item.strip() for item in part.split(";"))
        specificity = {offer: 2, f"{kind}/*": 1, "*/*": 0}.get(media)
        if specificity is None or (found is not None and found[0] >= specificity):
            continue
        found = (specificity, _quality(params), position)
    return (0.0, 0, 0) if found is None else (found[1], found[0], -found[2])


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return min(1.0, max(0.0, float(value)))
            except ValueError:
                return 1.0
    return 1.0


def results_response(
    store: JobStore,
    meta: JobMeta,
    *,
    media: str = JSON,
    keep: StatusFilter | None = None,
    page: tuple[int, int] | None = None,
    include_input: bool = False,
) -> StreamingResponse:
    """The job's results; `page` is `(number, size)` and adds the `x-pagination` header;
    `include_input` adds each row as it was sent (see `producer.inputs`)."""
    headers: dict[str, str] = {}
    start, stop = 0, None
    if page is not None:
        number, size = page
        start, stop = (number - 1) * size, number * size
        count = meta.total if keep is None else sum(1 for _ in _items(store, meta, keep))
        headers["x-pagination"] = orjson.dumps(
            {
                "TotalCount": count,
                "TotalPages": math.ceil(count / size),
                "CurrentPage": number,
                "PageSize": size,
            }
        ).decode()
    indexed = _items(store, meta, keep, start, stop)
    if include_input:
        indexed = with_inputs(store, meta, indexed, keep)
    if media == CSV:
        return StreamingResponse(_csv(indexed, include_input), 200, headers, media_type=CSV)
    if media == NDJSON:
        return StreamingResponse(_ndjson(indexed), 200, headers, media_type=NDJSON)
    items = (item for _, item in indexed)
    return StreamingResponse(stream_envelope(items, meta.job_id), 207, headers, media_type=JSON)


def _items(
    store: JobStore,
    meta: JobMeta,
    keep: StatusFilter | None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """`(input index, result item)` of the chosen rows, in input order."""
    spec = get_entity(meta.entity)
    history = store.history(meta.job_id) if meta.round else {}
    if keep is None:
        outcomes: Iterator[Outcome] = store.iter_outcomes(meta, start, stop)
    else:
        wanted = (item for item in store.iter_outcomes(meta) if keep(item.status))
        outcomes = itertools.islice(wanted, start, stop)
    for item in outcomes:
        yield item.position, expand(spec, item, history.get(item.position))


def _csv(
    items: Iterator[tuple[int, dict[str, Any]]], include_input: bool = False, batch: int = 2000
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = FormulaSafeWriter(buffer)
    writer.writerow(["row", "id", "status", "body", *(["input"] if include_input else [])])
    for n, (index, item) in enumerate(items, 1):
        cells = [index + 1, item["id"][0]["value"], item["status"], item["body"]]
        if include_input:
            cells.append(_input_cell(item["input"]))
        writer.writerow(cells)
        if n % batch == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _input_cell(row: Any) -> str:
    """The row as sent, as JSON text; empty when it is no longer kept."""
    return "" if row is None else orjson.dumps(row).decode()


def _ndjson(items: Iterator[tuple[int, dict[str, Any]]], batch: int = 2000) -> Iterator[bytes]:
    block: list[bytes] = []
    for index, item in items:
        block.append(orjson.dumps({"row": index + 1, **item}))
        if len(block) >= batch:
            yield b"\n".join(block) + b"\n"
            block = []
    if block:
        yield b"\n".join(block) + b"\n"
