"""Request limits of the batch call: media type, body size, rows, row size and nesting.

The headers are checked before a byte of the body is read (415, 413 on `Content-Length`);
the rest while the body streams in (`producer.intake`), which stops at the first crossed
limit so a hostile body is never read, parsed or stored whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from claimpay.settings import Settings
from producer.errors import RequestError, UnsupportedContentEncoding, UnsupportedMediaType


def setting_default(setting: str) -> int:
    """The default of an integer setting (`claimpay.settings.Settings`)."""
    default = Settings.model_fields[setting].default
    assert isinstance(default, int)
    return default


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """What one batch body may hold: the settings of the same names (`of`); by default,
    their defaults."""

    max_body_bytes: int = setting_default("max_body_bytes")
    max_rows: int = setting_default("max_rows")
    max_row_bytes: int = setting_default("max_row_bytes")
    max_depth: int = setting_default("max_json_depth")

    @classmethod
    def of(cls, settings: Settings) -> IntakeLimits:
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_rows=settings.max_rows,
            max_row_bytes=settings.max_row_bytes,
            max_depth=settings.max_json_depth,
        )


class BodyRejected(RequestError):
    """Raised when a body crosses a limit (`producer.problems` says which status)."""


class BodyTooLarge(BodyRejected):
    """Raised when the body is longer than `max_body_bytes`."""


class TooManyRows(BodyRejected):
    """Raised at the first row beyond `max_rows`."""


class RowTooLarge(BodyRejected):
    """Raised when one row's JSON text is longer than `max_row_bytes` (a huge string)."""


class TooDeep(BodyRejected):
    """Raised when the body nests deeper than `max_depth` (rows are flat objects)."""


class InvalidValue(BodyRejected):
    """Raised for a value no JSON reader can take (a number beyond a double or 64 bits,
    an unpaired surrogate), found only once the row is encoded for storage."""


class DuplicateKeys(BodyRejected):
    """Raised when an object in the body names the same member twice (ambiguous JSON)."""


JSON_MEDIA_TYPES = ("application/json",)


def is_json_media_type(content_type: str) -> bool:
    """`application/json` or any `+json` type, in UTF-8 (the only charset JSON has)."""
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type not in JSON_MEDIA_TYPES and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return False
    return True


def check_batch_headers(request: Request, limits: IntakeLimits) -> None:
    """415 for a body that is not JSON (or is compressed), 413 for a declared length over
    `max_body_bytes`: both before any of the body is read. A missing `Content-Type` is
    taken as JSON, as many clients send none."""
    content_type = request.headers.get("content-type")
    if content_type is not None and not is_json_media_type(content_type):
        raise UnsupportedMediaType("The body must be application/json (UTF-8).")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedContentEncoding(
            "The body must not be compressed (Content-Encoding is not supported)."
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise BodyTooLarge(too_large_detail(limits.max_body_bytes))


def too_large_detail(max_body_bytes: int) -> str:
    return f"The body is larger than the limit of {max_body_bytes} bytes."
