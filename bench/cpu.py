"""CPU time spent by each process of a measurement (user + system, from /proc/<pid>/stat):
it says where a run's cost goes, and unlike wall time it barely moves when other
processes share the cores."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import psycopg
from redis import Redis
from redis.exceptions import RedisError

from bench.stack import Stack

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SERVICE_NAMES = {"api": "api", "worker": "worker"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, 0.0 once it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_S
    return 0.0


def backend_pids(libpq_url: str, database: str) -> list[int]:
    """The server processes of every other session on `database` (the workers' ones)."""
    with psycopg.connect(libpq_url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return [int(row[0]) for row in rows]


def local_redis_pid(redis_url: str) -> int | None:
    """Redis's pid when it runs on this machine (its /proc entry is a redis-server)."""
    client = Redis.from_url(redis_url, socket_connect_timeout=3)
    try:
        pid = int(client.info("server").get("process_id", 0))
    except (RedisError, ValueError):
        return None
    finally:
        client.close()
    with contextlib.suppress(OSError):
        if b"redis" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    return None


class CpuMeter:
    """CPU seconds of the stack's processes, of the database server processes serving
    them, and of Redis, between `start()` and `stop()`. A process that started meanwhile
    (a pool process's first connection: a new PostgreSQL backend) counts whole; one that
    ended meanwhile is not counted."""

    def __init__(
        self, stack: Stack, backends: Callable[[], list[int]], redis_pid: int | None
    ) -> None:
        self.stack = stack
        self.backends = backends
        self.redis_pid = redis_pid
        self._before: dict[str, dict[int, float]] = {}

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        """CPU seconds per part since `start()`."""
        after = self._read()
        return {
            name: round(
                sum(
                    spent - self._before.get(name, {}).get(pid, 0.0) for pid, spent in pids.items()
                ),
                2,
            )
            for name, pids in after.items()
        }

    def _read(self) -> dict[str, dict[int, float]]:
        """CPU seconds of each process, by part."""
        pids = {name: s.group_pids() for name, s in self.stack.services.items()}
        pids["postgresql"] = self.backends()
        pids["redis"] = [self.redis_pid] if self.redis_pid else []
        return {name: {pid: cpu_seconds(pid) for pid in found} for name, found in pids.items()}
