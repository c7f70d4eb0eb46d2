"""The rows as they were sent, read back beside their results (`?include=input`).

A chunk keeps its rows until the job's TTL when any of its rows did not succeed (so that
`POST /jobs/{id}/retry` can apply them again, see `JobStore.record_chunk`): the failed
rows of a job can always be read back; a row of a chunk that fully succeeded cannot
(`None`). Rows are looked up a block of results at a time; of a chunk, only the rows the
status filter keeps are held, and only a few chunks at once.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from claimpay.jobs import JobMeta
from claimpay.jobstore import JobStore

BLOCK_ROWS = 1_000
"""Results looked up together (one `HMGET` of moved rows per block)."""
CACHED_CHUNKS = 4
"""Chunks whose rows are held at once (a repeated key's row lives in an earlier chunk)."""


def with_inputs(
    store: JobStore,
    meta: JobMeta,
    indexed: Iterable[tuple[int, dict[str, Any]]],
    keep: Callable[[int], bool] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each `(input index, result item)` with the row as sent added as the item's `input`
    (`None` when the row is no longer kept); `keep` is the status filter of the items."""
    keys = store.keys(meta.job_id)
    has_moved = bool(store.redis.exists(keys.moved))
    cache: OrderedDict[int, dict[int, Any]] = OrderedDict()
    iterator = iter(indexed)
    while block := list(itertools.islice(iterator, BLOCK_ROWS)):
        homes = [index // meta.chunk_size for index, _ in block]
        if has_moved:
            moved = store.redis.hmget(keys.moved, [str(index) for index, _ in block])
            homes = [int(m) if m is not None else h for m, h in zip(moved, homes, strict=True)]
        for (index, item), chunk_no in zip(block, homes, strict=True):
            rows = _chunk_rows(store, meta.job_id, chunk_no, cache, keep)
            yield index, {**item, "input": rows.get(index)}


def _chunk_rows(
    store: JobStore,
    job_id: str,
    chunk_no: int,
    cache: OrderedDict[int, dict[int, Any]],
    keep: Callable[[int], bool] | None,
) -> dict[int, Any]:
    if chunk_no in cache:
        cache.move_to_end(chunk_no)
        return cache[chunk_no]
    wanted: set[int] | None = None
    if keep is not None:  # a row's result is stored in the chunk that holds the row
        wanted = {o.position for o in store.stored_results(job_id, chunk_no) if keep(o.status)}
    loaded = store.load_rows(job_id, chunk_no) if wanted is None or wanted else []
    rows = {i: row for i, row in loaded if wanted is None or i in wanted}
    cache[chunk_no] = rows
    if len(cache) > CACHED_CHUNKS:
        cache.popitem(last=False)
    return rows
