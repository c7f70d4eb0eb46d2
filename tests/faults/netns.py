"""Simulated hosts on this machine: Linux network namespaces joined by a bridge.

Each host is a namespace with one interface (`eth0`, an address in `SUBNET`) whose peer is
a port of a bridge living in a namespace of its own (the switch), so nothing is added to
the machine's own network: traffic to `SUBNET` never leaves these namespaces. Processes run
in a host with `ip netns exec`; the test's own client code runs in a host through a thread
that entered that namespace (`HostThread`), so its sockets live there.

Everything a run creates is named `cpmh-<pid>-...` (namespaces, data directories): a run
sweeps the leftovers of runs whose process is gone before it starts (`sweep_leftovers`),
and tears its own down in finalizers, even when a test fails or is interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "cpmh-"
SUBNET = "10.231.15"
"""A private /24 used only inside the namespaces a run creates."""
BOGUS_MAC = "02:00:00:00:00:01"
"""A locally administered MAC that no interface has: frames to it reach nobody."""
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")

T = TypeVar("T")


class NamespacesUnavailable(RuntimeError):
    """Raised when this machine cannot create network namespaces (not root, no `ip`)."""


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


def namespaces_available() -> str | None:
    """None when a network namespace can be made here; else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    run(["ip", "netns", "del", probe], check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str) -> int | None:
    """The pid of the run that made `name` (`cpmh-<pid>-...`), if it parses."""
    head = name.removeprefix(PREFIX).split("-", 1)[0]
    return int(head) if head.isdigit() else None


def kill_namespace_processes(namespace: str) -> None:
    """SIGKILL every process whose network namespace is `namespace`."""
    found = run(["ip", "netns", "pids", namespace], check=False).stdout.split()
    for pid in found:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def delete_namespace(namespace: str) -> None:
    kill_namespace_processes(namespace)
    run(["ip", "netns", "del", namespace], check=False)


def sweep_leftovers() -> list[str]:
    """Remove namespaces and data directories of earlier runs whose process is gone;
    returns what was removed."""
    removed = []
    listed = run(["ip", "netns", "list"], check=False).stdout.splitlines()
    for line in listed:
        name = line.split()[0] if line.split() else ""
        owner = _owner_pid(name) if name.startswith(PREFIX) else None
        if owner is not None and not _pid_alive(owner):
            delete_namespace(name)
            removed.append(name)
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        owner = _owner_pid(path.name)
        if owner is not None and not _pid_alive(owner):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def _enter(namespace: str) -> None:
    """Move the calling thread into network namespace `namespace`."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(NETNS_DIR / namespace) as handle:
        if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {namespace}: {os.strerror(errno)}")


class HostThread:
    """One thread living in a host's namespace: whatever it calls opens its sockets there
    (a socket stays in the namespace it was made in, whichever thread uses it later)."""

    def __init__(self, namespace: str) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="netns", initializer=_enter, initargs=(namespace,)
        )

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._pool.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Host:
    """A simulated host: a namespace with `eth0` at `address`, plugged into `port`."""

    role: str
    namespace: str
    address: str
    port: str
    """Its bridge port's name, in the switch namespace."""


@dataclass
class Network:
    """The switch and the hosts of one run."""

    run_id: str
    switch: str
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls, roles: list[str]) -> Network:
        """Namespaces for the switch and for each role, `.2`, `.3`, ... in role order."""
        run_id = f"{PREFIX}{os.getpid()}-{os.urandom(2).hex()}"
        network = cls(run_id, f"{run_id}-sw")
        try:
            run(["ip", "netns", "add", network.switch])
            sw = ["ip", "-n", network.switch]
            run([*sw, "link", "add", "br0", "type", "bridge"])
            run([*sw, "link", "set", "br0", "up"])
            for number, role in enumerate(roles, start=2):
                network._add_host(role, f"{SUBNET}.{number}")
        except BaseException:
            network.destroy()
            raise
        return network

    def _add_host(self, role: str, address: str) -> None:
        namespace = f"{self.run_id}-{role}"
        port = f"p-{role}"[:15]
        run(["ip", "netns", "add", namespace])
        sw = ["ip", "-n", self.switch]
        run([*sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace])
        run([*sw, "link", "set", port, "master", "br0"])
        run([*sw, "link", "set", port, "up"])
        host = ["ip", "-n", namespace]
        run([*host, "addr", "add", f"{address}/24", "dev", "eth0"])
        run([*host, "link", "set", "eth0", "up"])
        run([*host, "link", "set", "lo", "up"])
        self.hosts[role] = Host(role, namespace, address, port)

    # -- processes ----------------------------------------------------------------------

    def spawn(
        self,
        role: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        uts_name: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in host `role` (in a UTS namespace named `uts_name`, if given), in
        its own process group, output to `log_path`."""
        command = ["ip", "netns", "exec", self.hosts[role].namespace]
        if uts_name:
            command += ["unshare", "--uts", "sh", "-c", f'hostname {uts_name} && exec "$@"', "-"]
        handle = log_path.open("ab")
        try:
            process = subprocess.Popen(
                [*command, *argv],
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        finally:
            handle.close()
        self.procs.append(process)
        return process

    def run_in(
        self, role: str, argv: list[str], env: dict[str, str] | None = None, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in host `role` to its end."""
        command = ["ip", "netns", "exec", self.hosts[role].namespace, *argv]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=timeout_s,
            check=False,
        )

    # -- faults -------------------------------------------------------------------------

    def cut_link(self, role: str) -> None:
        """Take the host off the network (its bridge port goes down)."""
        run(["ip", "-n", self.switch, "link", "set", self.hosts[role].port, "down"])

    def restore_link(self, role: str) -> None:
        run(["ip", "-n", self.switch, "link", "set", self.hosts[role].port, "up"])

    def partition(self, one: str, other: str) -> None:
        """Cut exactly the pair `one`-`other`: each resolves the other's address to a MAC
        nobody has (no netfilter needed); every other pair still talks."""
        first, second = self.hosts[one], self.hosts[other]
        for here, there in ((first, second), (second, first)):
            neigh = ["ip", "-n", here.namespace, "neigh", "replace", there.address]
            run([*neigh, "lladdr", BOGUS_MAC, "nud", "permanent", "dev", "eth0"])

    def heal(self, one: str, other: str) -> None:
        first, second = self.hosts[one], self.hosts[other]
        for here, there in ((first, second), (second, first)):
            run(["ip", "-n", here.namespace, "neigh", "del", there.address, "dev", "eth0"])

    # -- teardown -----------------------------------------------------------------------

    def stop(self, process: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def destroy(self) -> None:
        """Kill every process of the run and delete its namespaces (veths and the bridge
        go with them)."""
        for process in self.procs:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for host in self.hosts.values():
            delete_namespace(host.namespace)
        delete_namespace(self.switch)
        for process in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)


@contextlib.contextmanager
def network(roles: list[str]) -> Iterator[Network]:
    made = Network.create(roles)
    try:
        yield made
    finally:
        made.destroy()


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: Callable[[], str], poll_s: float = 0.1
) -> float:
    """Poll until `predicate()` holds; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"waited {timeout_s}s for {what()}")
        time.sleep(poll_s)
    return time.monotonic() - started
