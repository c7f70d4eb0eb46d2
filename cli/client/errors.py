"""What can go wrong in a client command, as types; each one knows its one-line message."""

from __future__ import annotations

from typing import Any

import orjson

from claimpay.errors import ClaimpayError


class ClientError(ClaimpayError):
    """Base of every error a client command reports to the user (and exits non-zero on)."""

    exit_code = 1


class UsageError(ClientError):
    """Raised when the command line or the environment lacks something (a credential)."""

    exit_code = 2


class InputError(ClientError):
    """Raised when the batch file is unreadable or malformed; names the line when known."""

    exit_code = 2

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class ApiUnreachable(ClientError):
    """Raised when the API cannot be reached (connection refused, DNS, timeout)."""


class ApiProblem(ClientError):
    """Raised when the API answers with an error status; carries its problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str | None = None,
        instance: str | None = None,
        activity_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.instance = instance
        self.activity_id = activity_id

    @classmethod
    def from_body(cls, status: int, reason: str, body: bytes) -> ApiProblem:
        """The problem of an error response: the envelope's `error` object when there is
        one, else the start of the body as the detail."""
        parsed = _json_object(body)
        error = parsed.get("error") if parsed else None
        if not isinstance(error, dict):
            text = body.decode("utf-8", errors="replace").strip()
            return cls(status, reason or "Error", text[:300])
        debug = parsed.get("debug") if parsed else None
        return cls(
            int(error.get("status") or status),
            str(error.get("title") or reason or "Error"),
            str(error.get("detail") or ""),
            type_=error.get("type"),
            instance=error.get("instance"),
            activity_id=debug.get("activityID") if isinstance(debug, dict) else None,
        )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
