"""A TCP proxy on loopback that the test controls: it forwards to a server until cut."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

_BUFFER = 65536
_BACKLOG = 1024
COMMIT_QUERY = b"Q\x00\x00\x00\x0bCOMMIT\x00"
"""PostgreSQL wire protocol: a simple-query message `COMMIT` (how psycopg commits)."""


class TcpProxy:
    """Forwards every connection on `127.0.0.1:<port>` to `upstream`.

    `cut()` closes every live connection and stops listening, so new connections are
    refused at once, as when the server is down; `restore()` listens on the same port again.
    One thread accepts, two threads per connection copy bytes.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._live: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._cut = threading.Event()
        self._closed = threading.Event()
        self.connections = 0
        """Connections forwarded so far."""
        self.cuts = 0
        self._ambush = threading.Event()
        self._swallow: set[socket.socket] = set()
        self._answered = threading.Event()
        self.ambushed = 0
        """COMMITs that reached the server and whose answer was never delivered."""

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        self._spawn(self._accept_loop, "proxy-accept")

    def cut(self) -> None:
        """Stop listening and close every live connection, until `restore()`."""
        self._cut.set()
        self.cuts += 1
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._drop_all()

    def cut_after_next_commit(self) -> None:
        """Arm an ambush: the next `COMMIT` a client sends is delivered to the server, the
        server's answer is swallowed, and then the proxy is cut. The client cannot know the
        transaction committed: the textbook ambiguous commit."""
        self._ambush.set()

    def restore(self, timeout_s: float = 30) -> None:
        """Listen again. The port may stay busy while clients still hold connections the
        cut closed (they linger in FIN_WAIT until the client closes its end): retry."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                listener = self._listen(self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with self._lock:
            if self._listener is None:
                self._listener = listener
            else:
                listener.close()
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        for thread in list(self._threads):
            thread.join(timeout=5)

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.create_server(("127.0.0.1", port), backlog=_BACKLOG)
        listener.settimeout(0.1)
        return listener

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            listener = self._listener
            if listener is None:
                self._closed.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue  # a timeout, or the listener was closed by `cut()`
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            for sock in (client, server):
                sock.settimeout(None)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._cut.is_set():  # cut while this one was being connected
                    _close(client)
                    _close(server)
                    continue
                self._live.update((client, server))
                self.connections += 1
            self._spawn(self._pump, "proxy-up", client, server)
            self._spawn(self._pump, "proxy-down", server, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_BUFFER):
                if source in self._swallow:
                    self._answered.set()
                    continue
                if self._ambush.is_set() and COMMIT_QUERY in data:
                    self._spring(data, sink)
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._live.discard(source)
                self._live.discard(sink)
            _close(source)
            _close(sink)

    def _spring(self, commit: bytes, server: socket.socket) -> None:
        """Deliver the COMMIT, wait for the server's answer (so it did commit), drop the
        answer, and cut."""
        self._ambush.clear()
        self._answered.clear()
        self._swallow.add(server)
        server.sendall(commit)
        if self._answered.wait(10):
            self.ambushed += 1
        self.cut()

    def _drop_all(self) -> None:
        with self._lock:
            live, self._live = self._live, set()
        for sock in live:
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
