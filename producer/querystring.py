"""Empty query parameters (`?state=&page=`) mean "not given", as clients write them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send


class DropEmptyQueryParameters:
    """A pure ASGI middleware removing `name=` (empty) pairs before routing validates them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query: bytes = scope.get("query_string", b"")
        if scope["type"] == "http" and b"=&" in query + b"&":
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            kept = [(name, value) for name, value in pairs if value != ""]
            if len(kept) != len(pairs):
                scope = {**scope, "query_string": urlencode(kept).encode("latin-1")}
        await self.app(scope, receive, send)
