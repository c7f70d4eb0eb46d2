"""Reading the app's OpenAPI document in tests: what an answer declares, and what a real
answer sends beyond it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

STANDARD_HEADERS = frozenset(
    {"content-type", "content-length", "date", "server", "transfer-encoding", "connection"}
)
"""Headers of the HTTP layer itself, which a document does not declare."""


def response_definition(
    document: dict[str, Any], method: str, path: str, status: int
) -> dict[str, Any]:
    """The documented answer `status` of the operation `method path` (a path template)."""
    operation = document["paths"][path][method.lower()]
    responses: dict[str, Any] = operation["responses"]
    found: dict[str, Any] | None = responses.get(str(status))
    assert found is not None, f"{method} {path} does not declare {status}"
    return found


def undeclared_headers(declared: Iterable[str], sent: Iterable[str]) -> set[str]:
    """The headers an answer sent that its documented answer does not declare."""
    known = {name.lower() for name in declared} | STANDARD_HEADERS
    return {name.lower() for name in sent} - known


def check_answer(
    document: dict[str, Any],
    method: str,
    path: str,
    status: int,
    headers: Iterable[str],
    media_type: str | None = None,
) -> None:
    """Assert the answer is declared: its status, its media type and every header sent."""
    answer = response_definition(document, method, path, status)
    extra = undeclared_headers(answer.get("headers", {}), headers)
    assert not extra, f"{method} {path} {status} sends undeclared headers {sorted(extra)}"
    if media_type is not None:
        declared = set(answer.get("content", {}))
        assert media_type.split(";")[0].strip() in declared, (method, path, status, declared)
