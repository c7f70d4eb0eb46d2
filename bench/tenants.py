"""Several tenants at once: what one tenant gets while others share the API and the workers.

Tenants as claimpay sees them: a database name each (all naming the run's PostgreSQL
database, their rows in key ranges of their own) and a client each. Two measurements:

- a second tenant sends its 100,000-row body as soon as the first tenant's 1,000,000-row
  body is accepted (its 202), while the first job runs: each one's time (first byte sent →
  completed), against the same batch alone earlier in the run, and both tenants' rows per
  second together;
- a third tenant sends 10-row batches, one after the other, from the 202 of a 100,000-row
  batch until its job completes: their latency (submit → completed; they go to the
  `.fast` queue, as any job of at most `CLAIMPAY_FAST_QUEUE_MAX_ROWS` rows).

Every client waits on the server (`Prefer: wait`), so that no client's polling weighs on
the others. Every job's counts are checked, and after the two tenants the table.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.client import ClaimpayClient
from bench.e2e import JOB_TIMEOUT_S, POLL_S, WrongOutcome
from bench.latency import percentile, timed_batch
from bench.loader import PreparedBatch, loader_rows
from bench.measures import TenantRun, TenantsSummary
from bench.rows import existing_keys
from bench.stack import Stack
from bench.tables import count_postgres, reset_postgres

SMALL_ROWS = 10
SMALL_FIRST_KEY = 900_000_001
"""The third tenant's keys: far above both big batches'."""


@dataclass(frozen=True)
class Tenant:
    """A tenant's database name and its batch (keys apart from every other tenant's)."""

    database: str
    batch: PreparedBatch


def tenants_at_once(
    api_url: str,
    jwt_secret: str,
    stack: Stack,
    libpq_url: str,
    turns: tuple[Tenant, Tenant],
    small_database: str,
    alone_s: dict[str, float],
) -> TenantsSummary:
    """The second tenant of `turns` sends its batch at the first one's 202; then
    `small_database`'s small batches during the second tenant's batch alone. `alone_s`
    holds each batch's time alone, by tenant, where it was measured."""
    together, last_s = _together(api_url, jwt_secret, stack, libpq_url, *turns)
    during = turns[1]
    small_ms, during_s = _small_during(
        api_url, jwt_secret, stack, libpq_url, during, small_database
    )
    return TenantsSummary(
        turns={
            tenant.database: TenantRun(
                tenant.batch.rows, together[tenant.database], alone_s.get(tenant.database)
            )
            for tenant in turns
        },
        small_batches=len(small_ms),
        small_rows=SMALL_ROWS,
        small_p50_ms=percentile(small_ms, 50),
        small_p99_ms=percentile(small_ms, 99),
        together_s=last_s,
        during_rows=during.batch.rows,
        during_s=during_s,
    )


def _together(
    api_url: str, jwt_secret: str, stack: Stack, libpq_url: str, first: Tenant, second: Tenant
) -> tuple[dict[str, float], float]:
    tenants = (first, second)
    _reset(libpq_url, tenants)
    bodies = {tenant.database: tenant.batch.body() for tenant in tenants}
    seconds: dict[str, float] = {}
    errors: list[BaseException] = []
    first_accepted = threading.Event()
    ended: dict[str, float] = {}
    started = time.perf_counter()

    def send(tenant: Tenant) -> None:
        try:
            with _client(api_url, jwt_secret) as client:
                if tenant is second:
                    first_accepted.wait()
                seconds[tenant.database] = _submit_and_wait(
                    client, stack, tenant, bodies[tenant.database], first_accepted.set
                )
                ended[tenant.database] = time.perf_counter() - started
        except BaseException as exc:  # reported by the caller's thread
            errors.append(exc)
        finally:
            first_accepted.set()  # the second tenant never waits for a failed first

    threads = [threading.Thread(target=send, args=(tenant,)) for tenant in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    _check_table(libpq_url, tenants)
    return {tenant.database: seconds[tenant.database] for tenant in tenants}, max(ended.values())


def _small_during(
    api_url: str, jwt_secret: str, stack: Stack, libpq_url: str, big: Tenant, database: str
) -> tuple[list[float], float]:
    """The small batches' latencies (ms) while `big`'s job runs, and that job's time."""
    _reset(libpq_url, (big,))
    body = big.batch.body()
    done: dict[str, float] = {}
    errors: list[BaseException] = []
    accepted = threading.Event()

    def send_big() -> None:
        try:
            with _client(api_url, jwt_secret) as client:
                done["s"] = _submit_and_wait(client, stack, big, body, accepted.set)
        except BaseException as exc:
            errors.append(exc)
        finally:
            accepted.set()

    thread = threading.Thread(target=send_big)
    latencies: list[float] = []
    with _client(api_url, jwt_secret) as client:
        thread.start()
        accepted.wait()  # from the big job's 202: while its chunks are applied
        for n in itertools.count():
            if not thread.is_alive():
                break
            rows = list(loader_rows(SMALL_ROWS, SMALL_FIRST_KEY + n * SMALL_ROWS, seed=n))
            small = json.dumps(rows).encode()
            latencies.append(timed_batch(client, stack, database, small, SMALL_ROWS, 0, POLL_S))
    thread.join()
    if errors:
        raise errors[0]
    if not latencies:
        raise WrongOutcome("no small batch completed while the big job ran")
    return latencies, done["s"]


def _submit_and_wait(
    client: ClaimpayClient,
    stack: Stack,
    tenant: Tenant,
    body: bytes,
    accepted: Callable[[], None] = lambda: None,
) -> float:
    """Seconds from submitting the tenant's batch until its job is seen completed."""
    existing = len(_existing(tenant))
    rows = tenant.batch.rows
    elapsed_ms = timed_batch(
        client, stack, tenant.database, body, rows, existing, POLL_S, JOB_TIMEOUT_S, accepted
    )
    return elapsed_ms / 1000


def _existing(tenant: Tenant) -> range:
    return existing_keys(tenant.batch.rows, tenant.batch.first_key)


def _reset(libpq_url: str, tenants: tuple[Tenant, ...]) -> None:
    reset_postgres(libpq_url, itertools.chain.from_iterable(map(_existing, tenants)))


def _check_table(libpq_url: str, tenants: tuple[Tenant, ...]) -> None:
    expected = sum(tenant.batch.rows for tenant in tenants)
    stored = count_postgres(libpq_url)
    if stored != expected:
        raise WrongOutcome(f"{stored} rows in the table after both tenants, expected {expected}")


def _client(api_url: str, jwt_secret: str) -> contextlib.closing[ClaimpayClient]:
    return contextlib.closing(ClaimpayClient(api_url, jwt_secret))
