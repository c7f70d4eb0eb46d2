"""Signals during a run: SIGTERM and SIGHUP stop it like Ctrl-C, and cleanup is not cut
short by a second Ctrl-C (the same handling as `claimpay dev`'s, from `cli.devstack`)."""

from __future__ import annotations

from cli.devstack import signals_ignored as uninterruptible
from cli.devstack import signals_raise_keyboard_interrupt as terminate_as_interrupt

__all__ = ["terminate_as_interrupt", "uninterruptible"]
