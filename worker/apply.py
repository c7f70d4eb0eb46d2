"""Apply one chunk: validate every row, upsert the valid ones, record the ledger entry."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.exc import DBAPIError, IntegrityError

from claimpay.clock import utc_now
from claimpay.entities import EntitySpec
from claimpay.envelope import Outcome, RowStatus, outcome
from claimpay.jobstore import decode_items
from claimpay.rows import InvalidRow, validate_items, validate_row, validate_rows
from worker import ledger
from worker.errors import TransientError, is_row_rejection, is_transient
from worker.upsert import upsert_rows

WOULD: dict[int, str] = {RowStatus.CREATED: "Would create", RowStatus.UPDATED: "Would update"}
"""Bodies of a dry run's rows: what a real run would do."""


Valid = list[tuple[int, dict[str, Any]]]
"""Valid rows as `(input index, column values)`."""


def split_valid(
    spec: EntitySpec, raw_rows: Sequence[tuple[int, Any]]
) -> tuple[Valid, list[Outcome]]:
    """Valid rows as `(index, column values)`, and a 400 outcome for every invalid one.

    The whole chunk is validated in one call first; only a chunk with an invalid row is
    validated row by row, to say which rows and why."""
    whole = validate_rows(spec, [raw for _, raw in raw_rows])
    if whole is not None:
        return [(index, values) for (index, _), values in zip(raw_rows, whole, strict=True)], []
    valid: Valid = []
    invalid: list[Outcome] = []
    for index, raw in raw_rows:
        checked = validate_row(spec, raw)
        if isinstance(checked, InvalidRow):
            invalid.append(outcome(index, RowStatus.INVALID, checked.key, checked.message))
        else:
            valid.append((index, checked.values))
    return valid, invalid


def split_valid_stored(spec: EntitySpec, elements: Sequence[bytes]) -> tuple[Valid, list[Outcome]]:
    """`split_valid` of a chunk as stored (`JobStore.load_elements`): each element is parsed
    and validated in one call, and only an element with an invalid row is decoded and
    validated row by row."""
    valid: Valid = []
    invalid: list[Outcome] = []
    for element in elements:
        whole = validate_items(spec, element)
        if whole is not None:
            valid.extend(whole)
            continue
        some_valid, some_invalid = split_valid(spec, decode_items(element))
        valid.extend(some_valid)
        invalid.extend(some_invalid)
    return valid, invalid


def apply_valid(
    engine: Engine,
    spec: EntitySpec,
    table: Table,
    job_id: str,
    chunk_no: int,
    valid: Valid,
    invalid: list[Outcome],
    user: str,
    *,
    dry_run: bool = False,
) -> list[Outcome]:
    """Outcomes of every row of the chunk, in input order; the `valid` rows are applied once
    (`split_valid` splits a chunk's rows; `invalid` are their 400s).

    `job_id` keys the ledger (a rerun round has its own). A dry run applies the rows in a
    transaction that is rolled back, and reports what would happen.
    Raises `TransientError` when the database is unavailable; the caller retries.
    """
    now = utc_now()

    def apply_once(isolate: bool) -> list[Outcome]:
        """One transaction: the ledger's answer if the chunk was applied, else apply it
        and record it. Without `isolate`, a row the database rejects raises
        `_RowRejected` (nothing is kept)."""
        with engine.begin() as conn:
            stored = ledger.lookup(conn, job_id, chunk_no)
            if stored is not None:
                return stored
            try:
                applied = upsert_rows(
                    conn, table, spec.key_column, valid, user=user, now=now, isolate=isolate
                )
            except DBAPIError as exc:
                if not isolate and is_row_rejection(exc):
                    raise _RowRejected from exc
                raise
            outcomes = _in_order(invalid, applied)
            ledger.record(conn, job_id, chunk_no, outcomes, now)
        return outcomes

    try:
        if dry_run:
            return _rehearse(engine, spec, table, valid, invalid, user)
        try:
            return apply_once(isolate=False)
        except _RowRejected:
            pass  # it took the transaction with it: again, isolating the rejected rows
        return apply_once(isolate=True)
    except IntegrityError:
        # Another run of this chunk committed first: its outcomes are the true ones.
        return _stored_or_raise(engine, job_id, chunk_no)
    except DBAPIError as exc:
        if is_transient(exc):
            raise TransientError(type(exc.orig or exc).__name__) from exc
        raise


class _RowRejected(Exception):
    """The database refused a row while rows were applied without savepoints."""


def _rehearse(
    engine: Engine,
    spec: EntitySpec,
    table: Table,
    valid: Valid,
    invalid: list[Outcome],
    user: str,
) -> list[Outcome]:
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            applied = upsert_rows(conn, table, spec.key_column, valid, user=user, now=utc_now())
        finally:
            transaction.rollback()
    would = [
        outcome(item.position, RowStatus(item.status), item.key, WOULD.get(item.status, item.body))
        for item in applied
    ]
    return _in_order(invalid, would)


def _stored_or_raise(engine: Engine, job_id: str, chunk_no: int) -> list[Outcome]:
    with engine.connect() as conn:
        stored = ledger.lookup(conn, job_id, chunk_no)
    if stored is None:
        raise RuntimeError(f"chunk {chunk_no} of job {job_id}: ledger conflict without entry")
    return stored


def failed_valid(
    spec: EntitySpec, valid: Valid, invalid: list[Outcome], status: RowStatus, body: str
) -> list[Outcome]:
    """Outcomes for a chunk that could not be applied: invalid rows keep their 400, every
    valid row gets `status` with `body`."""
    failed = [outcome(index, status, values[spec.key_column], body) for index, values in valid]
    return sorted(invalid + failed, key=_POSITION)


def _in_order(invalid: list[Outcome], others: list[Outcome]) -> list[Outcome]:
    """Both lists as one in input order; `others` (`upsert_rows`' outcomes) are in order."""
    if not invalid:
        return others
    return sorted(invalid + others, key=_POSITION)


_POSITION = attrgetter("position")
