"""Apply one chunk: validate every row, upsert the valid ones, record the ledger entry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.exc import DBAPIError, IntegrityError

from claimpay.clock import utc_now
from claimpay.entities import EntitySpec
from claimpay.envelope import CREATED, INVALID, UPDATED, Outcome, outcome
from claimpay.rows import InvalidRow, validate_row, validate_rows
from worker import ledger
from worker.errors import TransientError, is_transient
from worker.upsert import upsert_rows

UNAVAILABLE = 503
INTERNAL = 500
WOULD = {CREATED: "Would create", UPDATED: "Would update"}
"""Bodies of a dry run's rows: what a real run would do."""


def split_valid(
    spec: EntitySpec, raw_rows: Sequence[tuple[int, Any]]
) -> tuple[list[tuple[int, dict[str, Any]]], list[Outcome]]:
    """Valid rows as `(index, column values)`, and a 400 outcome for every invalid one.

    The whole chunk is validated in one call first; only a chunk with an invalid row is
    validated row by row, to say which rows and why."""
    whole = validate_rows(spec, [raw for _, raw in raw_rows])
    if whole is not None:
        return [(index, values) for (index, _), values in zip(raw_rows, whole, strict=True)], []
    valid: list[tuple[int, dict[str, Any]]] = []
    invalid: list[Outcome] = []
    for index, raw in raw_rows:
        checked = validate_row(spec, raw)
        if isinstance(checked, InvalidRow):
            invalid.append(outcome(index, INVALID, checked.key, checked.message))
        else:
            valid.append((index, checked.values))
    return valid, invalid


def apply_chunk(
    engine: Engine,
    spec: EntitySpec,
    table: Table,
    job_id: str,
    chunk_no: int,
    raw_rows: Sequence[tuple[int, Any]],
    user: str,
    *,
    dry_run: bool = False,
) -> list[Outcome]:
    """Outcomes of every row of the chunk, in input order; the rows are applied once.

    `job_id` keys the ledger (a retry round has its own). A dry run applies the rows in a
    transaction that is rolled back, and reports what would happen.
    Raises `TransientError` when the database is unavailable; the caller retries.
    """
    valid, invalid = split_valid(spec, raw_rows)
    now = utc_now()
    try:
        if dry_run:
            return _rehearse(engine, spec, table, valid, invalid, user)
        with engine.begin() as conn:
            stored = ledger.lookup(conn, job_id, chunk_no)
            if stored is not None:
                return stored
            applied = upsert_rows(conn, table, spec.key_column, valid, user=user, now=now)
            outcomes = sorted(invalid + applied, key=lambda item: item[0])
            ledger.record(conn, job_id, chunk_no, outcomes, now)
        return outcomes
    except IntegrityError:
        # Another run of this chunk committed first: its outcomes are the true ones.
        return _stored_or_raise(engine, job_id, chunk_no)
    except DBAPIError as exc:
        if is_transient(exc):
            raise TransientError(type(exc.orig or exc).__name__) from exc
        raise


def _rehearse(
    engine: Engine,
    spec: EntitySpec,
    table: Table,
    valid: list[tuple[int, dict[str, Any]]],
    invalid: list[Outcome],
    user: str,
) -> list[Outcome]:
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            applied = upsert_rows(conn, table, spec.key_column, valid, user=user, now=utc_now())
        finally:
            transaction.rollback()
    would = [outcome(i, status, key, WOULD.get(status, body)) for i, status, body, key in applied]
    return sorted(invalid + would, key=lambda item: item[0])


def _stored_or_raise(engine: Engine, job_id: str, chunk_no: int) -> list[Outcome]:
    with engine.connect() as conn:
        stored = ledger.lookup(conn, job_id, chunk_no)
    if stored is None:
        raise RuntimeError(f"chunk {chunk_no} of job {job_id}: ledger conflict without entry")
    return stored


def failed_chunk(
    spec: EntitySpec, raw_rows: Sequence[tuple[int, Any]], status: int, body: str
) -> list[Outcome]:
    """Outcomes for a chunk that could not be applied: invalid rows keep their 400, every
    valid row gets `status` with `body`."""
    valid, invalid = split_valid(spec, raw_rows)
    failed = [outcome(index, status, values[spec.key_column], body) for index, values in valid]
    return sorted(invalid + failed, key=lambda item: item[0])
