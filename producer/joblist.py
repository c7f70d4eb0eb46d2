"""Job listing: a database's jobs, newest first, from its indexes in Redis.

`JobStore.seal` adds every job to its database's sorted set (`StoreKeys.jobs_of`) and to
the one of its state (`StoreKeys.jobs_in_state`), scored by submission time; the Lua
scripts that change a job's state move it between the state sets. A page is read by one
script (`lua.LIST_PAGE`, through `JobStore.job_page`) that trims entries older than the
result TTL, counts, and picks the page's entries by rank, so its cost is O(page size)
whatever the number of jobs (and, listing several databases, O(log N) rank look-ups per
database to find where the page starts); then the page's jobs are read in one pipeline.
Entries whose job is gone are removed then; jobs still receiving their rows are never
indexed.
"""

from __future__ import annotations

from collections.abc import Sequence

from claimpay.jobqueries import IndexedPage
from claimpay.jobs import JobState
from claimpay.jobstore import JobStore

JobPage = IndexedPage
"""One page of a listing and the number of jobs in the whole listing."""


def list_jobs(
    store: JobStore,
    databases: Sequence[str],
    *,
    state: JobState | None = None,
    page: int = 1,
    page_size: int = 100,
    now: float | None = None,
) -> JobPage:
    """Page `page` (from 1) of the jobs of `databases` in `state` (any), newest first."""
    return store.job_page(databases, state, (page - 1) * page_size, page_size, now)
