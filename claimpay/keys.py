"""Every Redis key claimpay uses, built in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobKeys:
    """The keys of one job. All of them carry a TTL (`result_ttl_s`)."""

    prefix: str
    job_id: str

    @property
    def meta(self) -> str:
        """Hash: state, database, entity, counters, timestamps."""
        return f"{self.prefix}:job:{self.job_id}"

    def rows(self, chunk_no: int) -> str:
        """List of `[input_index, row]` JSON items waiting to be applied; deleted once done."""
        return f"{self.meta}:rows:{chunk_no}"

    def results(self, chunk_no: int) -> str:
        """String: the chunk's compact results, a JSON list of `[index, status, body, key]`."""
        return f"{self.meta}:res:{chunk_no}"

    @property
    def done(self) -> str:
        """Set of chunk numbers whose results are stored; decides exactly-once counting."""
        return f"{self.meta}:done"

    @property
    def moved(self) -> str:
        """Hash: input index -> chunk, for repeated keys placed with their first occurrence."""
        return f"{self.meta}:moved"

    def all_static(self) -> list[str]:
        return [self.meta, self.done, self.moved]
