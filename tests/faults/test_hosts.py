"""Faults across hosts: simulated hosts on network namespaces (see `tests.faults.netns`).

Hosts `redis`, `pg` (PostgreSQL, its own instance), `api`, `w1`, `w2` (one worker each,
`--concurrency 1`, each with its own hostname) and `client`, joined by a bridge. Faults:
a worker host's link cut while it holds an open transaction, and a partition between one
worker host and PostgreSQL only; then the host's return. Each is made deterministic by a
row lock the client holds: the chunk updating that row waits inside its transaction (seen
in `pg_stat_activity`), the fault strikes the host of that session, and the lock is let go.

For each: the job completes within 60 s of the fault, every row has exactly one result in
input order, the table holds exactly the expected rows, and the returning host does no harm
(a second job afterwards completes on both hosts and nothing of the first job changed).
Needs root and `ip netns`; skips without them, and fails instead under CI=true.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.factories import make_rows
from tests.faults.checks import (
    assert_one_result_per_row,
    expected_digest,
    key_of,
    status_counts,
    table_count,
    table_digest,
)
from tests.faults.cluster import (
    ROLES,
    WORKERS,
    Client,
    Cluster,
    missing_programs,
    pg_data_directory,
)
from tests.faults.conftest import Report
from tests.faults.netns import (
    PREFIX,
    HostThread,
    namespaces_available,
    network,
    run,
    sweep_leftovers,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

ROWS = 20_000
CHUNK = 500
HELD_INDEX = 10_250
"""The row whose lock the client holds: in chunk 20 of 40, mid-job."""
FAULT_BOUND_S = 60.0
"""The job completes within this long of the fault."""
HOST_ENV = {
    "CLAIMPAY_CHUNK_SIZE": str(CHUNK),
    "CLAIMPAY_LEASE_TTL_S": "6",
    "CLAIMPAY_SWEEP_INTERVAL_S": "2",
    "CLAIMPAY_STUCK_AFTER_S": "10",
    "CLAIMPAY_RETRY_BACKOFF_MAX_S": "8",
}
"""Recovery a little quicker than the defaults; the database bounds are the defaults."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = namespaces_available()
    if reason is None and (missing := missing_programs()):
        reason = f"missing programs: {', '.join(missing)}"
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}, and CI=true requires the multi-host suite")
        pytest.skip(reason)
    sweep_leftovers()
    workdir = tmp_path_factory.mktemp("hosts")
    with pg_data_directory() as pg_data, network(ROLES) as net:
        client = HostThread(net.hosts["client"].namespace)
        try:
            made = Cluster(net, workdir, client, pg_data)
            made.start_redis()
            made.start_postgres()
            yield made
        finally:
            client.close()


@dataclass
class Deployment:
    cluster: Cluster
    client: Client
    env: dict[str, str]

    def address(self, role: str) -> str:
        return self.cluster.address(role)


@pytest.fixture
def make_deployment(cluster: Cluster) -> Iterator[Callable[..., Deployment]]:
    """A fresh database and key prefix, the API and both workers; stopped afterwards."""
    made: list[Deployment] = []

    def make(**overrides: str) -> Deployment:
        name = f"hosts_{secrets.token_hex(4)}"
        url = cluster.create_database(name)
        env = cluster.env(f"cpmh{secrets.token_hex(4)}", url, {**HOST_ENV, **overrides})
        cluster.start_api(env)
        for role in WORKERS:
            cluster.start_worker(role, env)
        deployment = Deployment(cluster, Client(cluster, url, env["CLAIMPAY_KEY_PREFIX"]), env)
        made.append(deployment)
        return deployment

    try:
        yield make
    finally:
        for deployment in made:
            deployment.client.close()
        cluster.stop_claimpay()


def held_batch(deployment: Deployment, seed: int) -> tuple[list[dict[str, Any]], int]:
    """The batch, its held row stored before (so the batch updates it), and that row's key;
    the client holds the row's lock."""
    rows = make_rows(ROWS, first_key=1, seed=seed)
    held = rows[HELD_INDEX]
    deployment.client.seed({**held, "plan_ID": "OLD"})
    deployment.client.hold_row_lock(key_of(held))
    return rows, key_of(held)


def wait_for_held_worker(deployment: Deployment) -> str:
    """The worker host whose chunk waits on the client's row lock, inside its transaction."""
    addresses = {role: deployment.address(role) for role in WORKERS}
    found: list[str] = []

    def waiting() -> bool:
        role = deployment.client.waiting_worker(addresses)
        if role:
            found.append(role)
        return bool(role)

    wait_for(waiting, 120, lambda: f"a worker waiting on the row lock\n{deployment.cluster.logs()}")
    return found[0]


def check_job(deployment: Deployment, job_id: str, rows: list[dict[str, Any]]) -> dict[int, int]:
    """One result per row in input order; the table holds exactly the batch's rows."""
    client = deployment.client
    status = client.status(job_id)
    assert status["state"] == "completed"
    items = client.results(job_id)
    assert_one_result_per_row(items, rows)
    counts = status_counts(items)
    assert (status["processed"], status["failed"]) == (len(rows), 0)
    assert client.thread.call(table_count, client.engine) == len(rows)
    keys = [key_of(row) for row in rows]
    assert client.thread.call(table_digest, client.engine, keys) == expected_digest(rows)
    return counts


def returning_host_does_no_harm(
    deployment: Deployment, victim: str, job_id: str, rows: list[dict[str, Any]]
) -> float:
    """Once the victim answers again: a second job completes (both hosts take chunks) and
    nothing of the first job changed. Returns the seconds until the victim answered."""
    client = deployment.client
    before = (client.results(job_id), client.status(job_id))
    answered = wait_answering(deployment, victim)
    more = make_rows(4 * CHUNK, first_key=ROWS + 1, seed=99)
    second = client.submit(more)
    client.wait_completed(second, 90)
    items = client.results(second)
    assert_one_result_per_row(items, more)
    assert status_counts(items) == {201: len(more)}
    assert (client.results(job_id), client.status(job_id)) == before
    everything = rows + more
    assert client.thread.call(table_count, client.engine) == len(everything)
    keys = [key_of(row) for row in everything]
    assert client.thread.call(table_digest, client.engine, keys) == expected_digest(everything)
    [(ledger,)] = client.sql("SELECT count(*) FROM claimpay_chunk_ledger")
    assert ledger == ROWS // CHUNK + len(more) // CHUNK  # every chunk applied exactly once
    return answered


def wait_answering(deployment: Deployment, role: str) -> float:
    """Seconds until worker host `role`'s node answers `worker-health --node` again."""
    cluster, node = deployment.cluster, deployment.cluster.nodes[role]

    def answers() -> bool:
        found = cluster.worker_health(role, deployment.env, "--node", node, "--timeout-s", "3")
        return found.returncode == 0

    return wait_for(answers, 120, lambda: f"{role} ({node}) to answer\n{cluster.logs()}", 1.0)


def test_worker_health_answers_for_the_nodes_of_its_own_host(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment()
    cluster, env = deployment.cluster, deployment.env
    for role in WORKERS:
        local = cluster.worker_health(role, env, "--timeout-s", "3")
        assert local.returncode == 0, local.stdout + local.stderr
        assert local.stdout.strip() == f"ok: {cluster.nodes[role]}"
    nowhere = cluster.worker_health("client", env, "--timeout-s", "3")
    assert nowhere.returncode == 1, nowhere.stdout
    assert "no worker node on this host" in nowhere.stdout
    assert cluster.nodes["w1"] != cluster.nodes["w2"]


def test_a_worker_host_cut_off_inside_a_transaction(
    make_deployment: Callable[..., Deployment], report: Report
) -> None:
    deployment = make_deployment()
    cluster, client = deployment.cluster, deployment.client
    rows, held_key = held_batch(deployment, seed=151)
    job_id = client.submit(rows)
    victim = wait_for_held_worker(deployment)

    fault = time.monotonic()
    cluster.net.cut_link(victim)
    client.release_row_lock()  # its statement ends; its transaction stays open, orphaned
    client.wait_completed(job_id, FAULT_BOUND_S)
    completed_s = time.monotonic() - fault
    counts = check_job(deployment, job_id, rows)
    assert counts == {201: ROWS - 1, 200: 1}
    assert client.sessions_of(deployment.address(victim)) == 0  # its orphan was ended

    cluster.net.restore_link(victim)
    back = time.monotonic()
    answered_s = returning_host_does_no_harm(deployment, victim, job_id, rows)
    report(
        f"{ROWS:,} rows; {victim}'s link cut inside a transaction (row {held_key} held): "
        f"completed {completed_s:.1f}s after the cut; back {time.monotonic() - back:.1f}s "
        f"after the link returned (answering after {answered_s:.1f}s), no harm"
    )


def test_a_worker_host_partitioned_from_postgresql_only(
    make_deployment: Callable[..., Deployment], report: Report
) -> None:
    # A short call bound, so the stall shows before TCP ends the call (keepalives).
    deployment = make_deployment(CLAIMPAY_DB_CALL_TIMEOUT_S="4")
    cluster, client = deployment.cluster, deployment.client
    rows, held_key = held_batch(deployment, seed=152)
    job_id = client.submit(rows)
    victim = wait_for_held_worker(deployment)
    node = cluster.nodes[victim]

    fault = time.monotonic()
    cluster.net.partition(victim, "pg")
    client.release_row_lock()
    # Reaching Redis but stuck in its database call: the node still answers a ping, but
    # `worker-health` fails for it, and its lease is not renewed (another host takes it).
    stuck: list[str] = []

    def reported_stuck() -> bool:
        answer = cluster.worker_health(victim, deployment.env, "--node", node, "--timeout-s", "3")
        stuck.append(answer.stdout)
        return answer.returncode == 1 and answer.stdout.startswith("stuck:")

    stuck_s = wait_for(reported_stuck, 30, lambda: f"worker-health to say stuck: {stuck}")
    client.wait_completed(job_id, FAULT_BOUND_S - (time.monotonic() - fault))
    completed_s = time.monotonic() - fault
    counts = check_job(deployment, job_id, rows)
    assert counts == {201: ROWS - 1, 200: 1}

    cluster.net.heal(victim, "pg")
    answered_s = returning_host_does_no_harm(deployment, victim, job_id, rows)
    report(
        f"{ROWS:,} rows; {victim} cut from PostgreSQL only, inside a database call (row "
        f"{held_key} held): worker-health said stuck {stuck_s:.1f}s after, completed "
        f"{completed_s:.1f}s after the partition; healed, answering after {answered_s:.1f}s, "
        "no harm"
    )


def test_a_redis_reset_without_persistence_kills_no_worker_and_answers_410(
    make_deployment: Callable[..., Deployment], report: Report
) -> None:
    deployment = make_deployment()
    cluster, client = deployment.cluster, deployment.client
    rows = make_rows(ROWS, first_key=1, seed=153)
    job_id = client.submit(rows)
    wait_for(
        lambda: client.status(job_id)["processed"] >= 5 * CHUNK,
        60,
        lambda: f"5 chunks of {job_id}\n{cluster.logs()}",
    )
    reset = time.monotonic()
    cluster.reset_redis()  # no AOF, no snapshots: the job store comes back empty

    lost = client.get_job(job_id)
    assert lost.status_code == 410, lost.text
    assert lost.json()["error"]["type"].endswith("job-store-reset")
    assert client.get_job("0" * 32).status_code == 404  # an ID never issued: still unknown
    for role in WORKERS:  # the worker processes themselves survived the broker's loss
        wait_answering(deployment, role)
        assert cluster.processes[role].poll() is None, cluster.log_tail(role)
        assert "Unrecoverable error" not in cluster.log_tail(role, 10**6)
    more = make_rows(4 * CHUNK, first_key=ROWS + 1, seed=154)
    second = client.submit(more)
    client.wait_completed(second, 60)
    assert status_counts(client.results(second)) == {201: len(more)}
    applied = client.thread.call(table_count, client.engine) - len(more)
    assert 5 * CHUNK <= applied <= ROWS  # what was applied before the reset stays applied
    report(
        f"{ROWS:,} rows; Redis reset (no persistence) after {applied:,} rows were applied: "
        f"the job answered 410, both workers alive, a new job completed "
        f"{time.monotonic() - reset:.1f}s after the reset"
    )


def test_a_dead_runs_leftovers_are_swept(cluster: Cluster) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid no process has now: a run that died without tearing down
    namespace = f"{PREFIX}{dead.pid}-sw"
    directory = Path(tempfile.gettempdir()) / f"{PREFIX}{dead.pid}-pg-x"
    run(["ip", "netns", "add", namespace])
    directory.mkdir()
    try:
        removed = sweep_leftovers()
        assert namespace in removed
        assert str(directory) in removed
        assert namespace not in run(["ip", "netns", "list"]).stdout
        assert not directory.exists()
        live = cluster.net.switch
        assert live in run(["ip", "netns", "list"]).stdout  # a live run's are kept
    finally:
        run(["ip", "netns", "del", namespace], check=False)
        shutil.rmtree(directory, ignore_errors=True)
