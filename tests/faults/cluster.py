"""A claimpay deployment across simulated hosts (see `tests.faults.netns`).

Hosts: `redis` (its own `redis-server`), `pg` (its own PostgreSQL instance from the
installed server binaries, run as the `postgres` OS user), `api` (`claimpay api`), `w1` and
`w2` (`claimpay worker --concurrency 1`, each in a UTS namespace of its own: two hostnames),
and `client`, where the test's own code runs (`HostThread`): it submits batches to the API,
polls, and reads PostgreSQL and Redis over the simulated network like any other host.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis import Redis
from sqlalchemy import Connection, Engine, create_engine, text

from producer.tokens import mint_token
from tests.factories import API_KEY, JWT_SECRET
from tests.faults.netns import PREFIX, HostThread, Network, wait_for

ROLES = ["redis", "pg", "api", "w1", "w2", "client"]
WORKERS = ("w1", "w2")
API_PORT = 8000
BATCH = "/claim-prompt-pays-batch"
POSTGRES_USER = "postgres"


def server_binary(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, else the newest under /usr/lib/postgresql."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing_programs() -> list[str]:
    wanted = {"redis-server": shutil.which("redis-server")}
    wanted |= {name: server_binary(name) for name in ("initdb", "postgres")}
    wanted["setpriv"] = shutil.which("setpriv")
    wanted["unshare"] = shutil.which("unshare")
    return [name for name, path in wanted.items() if path is None]


def cli_program() -> str:
    """The `claimpay` console script of this interpreter's environment."""
    return str(Path(sys.executable).parent / "claimpay")


@dataclass
class Cluster:
    """Redis, PostgreSQL, the client host; the API and workers come and go per test."""

    net: Network
    workdir: Path
    client: HostThread
    pg_data: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)
    """Worker role -> its Celery node name."""

    @property
    def redis_url(self) -> str:
        return f"redis://{self.net.hosts['redis'].address}:6379/0"

    def pg_url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.net.hosts['pg'].address}:5432/{database}"

    @property
    def api_url(self) -> str:
        return f"http://{self.net.hosts['api'].address}:{API_PORT}"

    def address(self, role: str) -> str:
        return self.net.hosts[role].address

    # -- servers ------------------------------------------------------------------------

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        argv = [binary, "--bind", self.address("redis"), "--port", "6379", "--save", ""]
        argv += ["--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"]
        argv += ["--dir", str(self.workdir)]
        self.processes["redis"] = self.net.spawn("redis", argv, self.workdir / "redis.log")
        self.client.call(_wait_redis, self.redis_url, 20)

    def reset_redis(self) -> None:
        """Kill Redis (it persists nothing here) and start it again: an empty store."""
        old = self.processes.pop("redis")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL)
        old.wait(10)
        self.start_redis()

    def start_postgres(self) -> None:
        initdb, postgres = server_binary("initdb"), server_binary("postgres")
        assert initdb is not None
        assert postgres is not None
        as_postgres = ["setpriv", "--reuid", POSTGRES_USER, "--regid", POSTGRES_USER]
        as_postgres += ["--init-groups"]
        init = [initdb, "-D", str(self.pg_data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        made = subprocess.run(
            [*as_postgres, *init, "--no-sync"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        with (self.pg_data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.address('pg').rsplit('.', 1)[0]}.0/24 trust\n")
        argv = [*as_postgres, postgres, "-D", str(self.pg_data)]
        argv += ["-c", f"listen_addresses={self.address('pg')}", "-c", "port=5432"]
        argv += ["-c", f"unix_socket_directories={self.pg_data}", "-c", "fsync=off"]
        argv += ["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        argv += ["-c", "max_connections=100"]
        self.processes["pg"] = self.net.spawn("pg", argv, self.workdir / "postgres.log")
        self.client.call(_wait_postgres, self.pg_url("postgres"), 60)

    def create_database(self, name: str) -> str:
        """A new migrated database `name` on the `pg` host; returns its URL."""
        return self.client.call(_create_database, self.pg_url("postgres"), self.pg_url(name), name)

    # -- claimpay -----------------------------------------------------------------------

    def env(self, namespace: str, database_url: str, overrides: dict[str, str]) -> dict[str, str]:
        env = {
            "CLAIMPAY_REDIS_URL": self.redis_url,
            "CLAIMPAY_DATABASES": json.dumps({"acme": database_url}),
            "CLAIMPAY_API_KEYS": json.dumps({API_KEY: ["*"]}),
            "CLAIMPAY_JWT_SECRET": JWT_SECRET,
            "CLAIMPAY_KEY_PREFIX": namespace,
            "CLAIMPAY_QUEUE": namespace,
            "CLAIMPAY_LOG_FORMAT": "text",
        }
        env.update(overrides)
        return env

    def start_api(self, env: dict[str, str]) -> None:
        argv = [cli_program(), "api", "--host", self.address("api"), "--port", str(API_PORT)]
        self.processes["api"] = self.net.spawn("api", argv, self.workdir / "api.log", env)
        self.client.call(_wait_http, f"{self.api_url}/health/live", 60)

    def start_worker(self, role: str, env: dict[str, str]) -> str:
        """`claimpay worker --concurrency 1` on host `role` (hostname `<run>-<role>`);
        returns its node name once it is ready (the default: `claimpay@<host>-<pid>`)."""
        hostname = f"{role}-host"
        log = self.workdir / f"{role}.log"
        argv = [cli_program(), "worker", "--concurrency", "1"]
        process = self.net.spawn(role, argv, log, env, uts_name=hostname)
        self.processes[role] = process
        wait_for(
            lambda: " ready." in log.read_text(errors="replace") or process.poll() is not None,
            90,
            lambda: f"worker {role} to be ready:\n{self.log_tail(role)}",
        )
        assert process.poll() is None, f"worker {role} exited:\n{self.log_tail(role)}"
        node = f"claimpay@{hostname}-{process.pid}"
        self.nodes[role] = node
        return node

    def worker_health(
        self, role: str, env: dict[str, str], *args: str
    ) -> subprocess.CompletedProcess[str]:
        """`claimpay worker-health ...` run on host `role` (with that host's hostname)."""
        argv = ["unshare", "--uts", "sh", "-c", f'hostname {role}-host && exec "$@"', "-"]
        argv += [cli_program(), "worker-health", *args]
        return self.net.run_in(role, argv, env, timeout_s=60)

    def stop_claimpay(self) -> None:
        for role in ("api", *WORKERS):
            process = self.processes.pop(role, None)
            if process is not None:
                self.net.stop(process)

    def log_tail(self, role: str, chars: int = 3000) -> str:
        path = self.workdir / f"{role}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def logs(self) -> str:
        return "\n".join(f"--- {role} ---\n{self.log_tail(role)}" for role in ("api", *WORKERS))


def _wait_redis(url: str, timeout_s: float) -> None:
    redis = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        wait_for(lambda: _answers(redis), timeout_s, lambda: f"Redis at {url}")
    finally:
        redis.close()


def _answers(redis: Redis) -> bool:
    try:
        return bool(redis.ping())
    except Exception:
        return False


def _wait_postgres(url: str, timeout_s: float) -> None:
    engine = create_engine(url, connect_args={"connect_timeout": 2})

    def up() -> bool:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    try:
        wait_for(up, timeout_s, lambda: f"PostgreSQL at {url}", poll_s=0.2)
    finally:
        engine.dispose()


def _create_database(admin_url: str, url: str, name: str) -> str:
    from worker.migrate import upgrade

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    upgrade(url)
    return url


def _wait_http(url: str, timeout_s: float) -> None:
    def up() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout_s, lambda: f"HTTP at {url}", poll_s=0.2)


@contextlib.contextmanager
def pg_data_directory() -> Iterator[Path]:
    """A data directory the `postgres` user owns, named for the leftover sweep."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-pg-"))
    try:
        uid = pwd.getpwnam(POSTGRES_USER).pw_uid
        gid = grp.getgrnam(POSTGRES_USER).gr_gid
        os.chown(path, uid, gid)
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Client:
    """The test's client host: the API over HTTP, PostgreSQL and Redis over the network.
    Every call runs on the client host's thread."""

    def __init__(self, cluster: Cluster, database_url: str, prefix: str) -> None:
        self.cluster = cluster
        self.thread = cluster.client
        self.engine: Engine = self.thread.call(create_engine, database_url)
        self.redis: Redis = self.thread.call(Redis.from_url, cluster.redis_url)
        self.http: httpx.Client = self.thread.call(
            httpx.Client, base_url=cluster.api_url, timeout=30
        )
        self.prefix = prefix
        self._blocker: Connection | None = None

    def close(self) -> None:
        self.thread.call(self._close)

    def _close(self) -> None:
        if self._blocker is not None:
            with contextlib.suppress(Exception):
                self._blocker.close()
        self.http.close()
        self.redis.close()
        self.engine.dispose()

    def headers(self) -> dict[str, str]:
        token = mint_token(JWT_SECRET, "hosts", 600)
        return {
            "x-api-key": API_KEY,
            "Authorization": f"Bearer {token}",
            "vbasoftware-database": "acme",
        }

    # -- the API ------------------------------------------------------------------------

    def submit(self, rows: list[dict[str, Any]]) -> str:
        def put() -> str:
            response = self.http.put(BATCH, content=orjson.dumps(rows), headers=self.headers())
            assert response.status_code == 202, response.text
            job_id: str = response.json()["data"]["jobId"]
            return job_id

        return self.thread.call(put)

    def get_job(self, job_id: str) -> httpx.Response:
        return self.thread.call(self.http.get, f"/jobs/{job_id}", headers=self.headers())

    def status(self, job_id: str) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            response = self.http.get(f"/jobs/{job_id}", headers=self.headers())
            assert response.status_code == 200, response.text
            data: dict[str, Any] = response.json()["data"]
            return data

        return self.thread.call(get)

    def results(self, job_id: str) -> list[dict[str, Any]]:
        """The whole 207 envelope's `data`."""

        def get() -> list[dict[str, Any]]:
            response = self.http.get(f"/jobs/{job_id}/results", headers=self.headers())
            assert response.status_code == 207, response.text[:500]
            body = response.json()
            assert body["error"] is None
            items: list[dict[str, Any]] = body["data"]
            return items

        return self.thread.call(get)

    def wait_completed(self, job_id: str, timeout_s: float) -> float:
        """Seconds until the job is `completed` (bounded by `timeout_s`)."""
        last: dict[str, Any] = {}

        def completed() -> bool:
            nonlocal last
            last = self.status(job_id)
            return bool(last["state"] == "completed")

        return wait_for(
            completed,
            timeout_s,
            lambda: f"job {job_id} to complete: {last}\n{self.cluster.logs()}",
            poll_s=0.25,
        )

    # -- PostgreSQL ---------------------------------------------------------------------

    def sql(self, statement: str, **params: Any) -> list[Any]:
        def query() -> list[Any]:
            with self.engine.connect() as conn:
                return list(conn.execute(text(statement), params).all())

        return self.thread.call(query)

    def seed(self, row: dict[str, Any]) -> None:
        """Store `row` as if an earlier batch had written it."""
        from tests.faults.checks import seed_table

        self.thread.call(seed_table, self.engine, [row])

    def hold_row_lock(self, key: int) -> None:
        """Lock the row of `key` in an open transaction: a chunk updating it waits, its
        transaction open (with the row locks it took so far), until `release_row_lock`."""

        def hold() -> None:
            conn = self.engine.connect()
            conn.execute(
                text("SELECT 1 FROM claim_prompt_pay WHERE claim_prompt_pay_key = :k FOR UPDATE"),
                {"k": key},
            )
            self._blocker = conn

        self.thread.call(hold)

    def release_row_lock(self) -> None:
        def release() -> None:
            if self._blocker is not None:
                self._blocker.rollback()
                self._blocker.close()
                self._blocker = None

        self.thread.call(release)

    def waiting_worker(self, addresses: dict[str, str]) -> str | None:
        """The worker host whose session waits on a lock (our row lock), if one does."""
        found = self.sql(
            "SELECT host(client_addr) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND state = 'active' AND backend_xid IS NOT NULL"
        )
        by_address = {address: role for role, address in addresses.items()}
        for (address,) in found:
            if address in by_address:
                return by_address[address]
        return None

    def sessions_of(self, address: str) -> int:
        [(count,)] = self.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE host(client_addr) = :a", a=address
        )
        return int(count)
