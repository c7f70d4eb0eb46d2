"""A hostile webhook receiver on loopback: it reads the request, then trickles its answer
one byte at a time and never finishes it. It records who connected and who hung up."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

TRICKLE = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100_000


@dataclass
class SlowReceiver:
    """Counts requests received, connections open now, and connections the caller closed."""

    interval_s: float = 0.5
    url: str = ""
    requests: int = 0
    open_now: int = 0
    hung_up: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def wait_until(self, what: str, count: int, timeout_s: float = 60) -> None:
        """Wait until `requests`, `open_now` or `hung_up` reaches `count`."""
        deadline = time.monotonic() + timeout_s
        while getattr(self, what) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} = {getattr(self, what)}, expected {count}")
            time.sleep(0.02)

    def handle(self, conn: socket.socket) -> None:
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                data = conn.recv(65536)
                if not data:
                    return
                received += data
            head, _, body = received.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:
                data = conn.recv(65536)
                if not data:
                    return
                body += data
            with self._lock:
                self.requests += 1
                self.open_now += 1
            try:
                for byte in TRICKLE:
                    if self._stop.wait(self.interval_s):
                        return
                    conn.sendall(bytes([byte]))
                    # A closed peer shows as readable with nothing to read.
                    conn.setblocking(False)
                    try:
                        if conn.recv(1) == b"":
                            raise ConnectionResetError
                    except BlockingIOError:
                        pass
                    finally:
                        conn.setblocking(True)
            except OSError:
                with self._lock:
                    self.hung_up += 1
            finally:
                with self._lock:
                    self.open_now -= 1


@contextlib.contextmanager
def slow_receiver(interval_s: float = 0.5) -> Iterator[SlowReceiver]:
    """A running `SlowReceiver` on 127.0.0.1; stopped (every connection closed) on exit."""
    receiver = SlowReceiver(interval_s)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    receiver.url = f"http://127.0.0.1:{server.getsockname()[1]}/hooks/slow"

    def serve() -> None:
        while not receiver._stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=receiver.handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver._stop.set()
        thread.join(5)
        server.close()
