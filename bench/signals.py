"""Signals during a run: SIGTERM and SIGHUP stop it like Ctrl-C, and cleanup is not cut
short by a second Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from cli.devstack import signals_raise_keyboard_interrupt as terminate_as_interrupt

__all__ = ["terminate_as_interrupt", "uninterruptible"]


@contextlib.contextmanager
def uninterruptible() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP are ignored: cleanup runs to its end."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
