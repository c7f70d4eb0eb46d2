"""Logging: one JSON object per line (or readable text), with the job's context on every line.

Code binds what a line is about, `log_context(jobId=..., chunk=..., database=...)` or
`activityID` for a request, and every record logged inside carries it. Messages never
include row contents, keys, tokens or secrets; exceptions are rendered as their types and
stack frames only, because a database error's message can quote a row's values; URLs are
shown without their userinfo and query string, whoever logs them (`RedactUrls`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import logging.config
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any, Literal

import orjson

from claimpay.redaction import redact_urls

LogFormat = Literal["json", "text"]
CONTEXT_FIELDS = ("activityID", "jobId", "chunk", "database")
"""The context keys, in the order they are shown."""

_EMPTY: Mapping[str, object] = MappingProxyType({})
_CONTEXT: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "claimpay_log_context", default=_EMPTY
)
_RECORD_ATTRS = frozenset(
    set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
    | {"message", "asctime", "claimpay_context", "taskName"}
)
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add `fields` (None values are left out) to every record logged inside the block."""
    token = _CONTEXT.set(_merged(fields))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**fields: object) -> None:
    """Add `fields` to the current context until the enclosing `log_context` ends."""
    _CONTEXT.set(_merged(fields))


def reset_context(**fields: object) -> None:
    """Make `fields` the whole context (for hooks around a unit of work, such as a task)."""
    _CONTEXT.set(_EMPTY)
    _CONTEXT.set(_merged(fields))


def current_context() -> Mapping[str, object]:
    return _CONTEXT.get()


def _merged(fields: Mapping[str, object]) -> Mapping[str, object]:
    added = {key: value for key, value in fields.items() if value is not None}
    return MappingProxyType({**_CONTEXT.get(), **added})


class ContextFilter(logging.Filter):
    """Copies the context onto the record when it is emitted (in the logging thread)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "claimpay_context"):
            record.claimpay_context = dict(_CONTEXT.get())
        return True


class RedactUrls(logging.Filter):
    """Takes userinfo, query strings and fragments out of every URL a record quotes, in
    its message and its extra fields (`claimpay.redaction`): a handler filter, so records
    of every logger (httpx, uvicorn, Celery) pass through it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it as usual
            return True
        # Kept formatted (redacted or not), so the formatter does not format it again.
        record.msg, record.args = redact_urls(message), None
        for key, value in record.__dict__.items():
            if isinstance(value, str) and key not in _RECORD_ATTRS and not key.startswith("_"):
                record.__dict__[key] = redact_urls(value)
        return True


def _context_of(record: logging.LogRecord) -> dict[str, object]:
    found = getattr(record, "claimpay_context", None)
    return dict(found) if isinstance(found, dict) else dict(_CONTEXT.get())


def redacted_exception(exc_info: ExcInfo) -> dict[str, str]:
    """An exception as its type and stack frames, causes included; messages withheld."""
    _, exc, tb = exc_info
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = traceback.format_tb(current.__traceback__ if current is not exc else tb)
        name = f"{type(current).__module__}.{type(current).__qualname__}"
        lines[:0] = [
            "Traceback (most recent call last):\n",
            *frames,
            f"{name} (message withheld)\n",
        ]
        current = current.__cause__ or current.__context__
        if current is not None:
            lines[:0] = ["\nwhich was raised while handling or because of:\n"]
    return {"type": type(exc).__qualname__, "stack": "".join(lines).rstrip()}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", <context>, <extra>, "exc"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        entry.update(_context_of(record))
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc"] = redacted_exception(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`12:00:00 INFO claimpay.worker message [jobId=… chunk=3 database=demo]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text
        record.exc_info, record.exc_text = None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info, record.exc_text = saved
        context = _context_of(record)
        shown = [f"{key}={context[key]}" for key in CONTEXT_FIELDS if key in context]
        if shown:
            line += f" [{' '.join(shown)}]"
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + redacted_exception(record.exc_info)["stack"]
        return line


def logging_config(log_format: LogFormat, level: str | int = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: the root logger to stderr in `log_format`
    (uvicorn applies it in each of its worker processes)."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}, "redact": {"()": RedactUrls}},
        "formatters": {"claimpay": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "claimpay",
                "filters": ["context", "redact"],
            }
        },
        "root": {
            "level": logging.getLevelName(level) if isinstance(level, int) else level,
            "handlers": ["stderr"],
        },
        "loggers": {
            # Their own handlers would print a second, unstructured copy of each line.
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "tornado")
        },
    }


def configure_logging(log_format: LogFormat, level: str | int = "INFO") -> None:
    """Send every log record of this process to stderr in `log_format`."""
    logging.config.dictConfig(logging_config(log_format, level))
