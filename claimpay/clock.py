"""Timestamps as claimpay writes them: UTC, ISO 8601, millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, naive UTC (how rows store it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc_now_iso() -> str:
    """The current time as `2026-01-31T12:00:00.000Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
