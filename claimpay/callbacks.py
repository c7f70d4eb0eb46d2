"""Which `callbackUrl`s a worker could ever deliver to: checked at submit (400) and again
before delivery, so that a URL no HTTP client can send is refused at once rather than
accepted and failed later.

Refused: anything but `http`/`https` with a host; whitespace and control characters
anywhere (raw CR/LF would split a request line); a port out of range; an IPv4 address in
any form but four decimal numbers (`0177.0.0.1`, `0x7f.1`, `127.1` and `2130706433`
mean 127.0.0.1 to some parsers and another host, or nothing, to others); an IPv6 address
with a zone; a host name whose labels are not DNS labels. What httpx itself cannot parse
is refused too. Userinfo (`user:pass@`) is allowed (sent as Basic auth) and never logged.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

import httpx

MAX_HOST_CHARS = 253
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")


def undeliverable(url: str) -> str | None:
    """Why no worker could ever POST to `url` (plain words, never quoting it), or None."""
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an IPv4 address in brackets
        return "is not a URL an HTTP client can send"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    if port == 0:
        return "has an invalid port"
    try:
        host = httpx.URL(url).raw_host.decode("ascii").lower()
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return "is not a URL an HTTP client can send"
    return _host_problem(host, bracketed=parts.netloc.rpartition("@")[2].startswith("["))


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    if bracketed:
        if "%" in host:
            return "has an IPv6 address with a zone"
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "has an invalid IPv6 address"
        return None
    name = host.removesuffix(".")
    labels = name.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):  # WHATWG: a host ending in a number is IPv4
        try:
            ipaddress.IPv4Address(host)  # `127.0.0.1.` too is refused
        except ValueError:
            return "has an IPv4 address that is not four decimal numbers (0-255)"
        return None
    if len(name) > MAX_HOST_CHARS or not all(_LABEL.fullmatch(label) for label in labels):
        return "has an invalid host name"
    return None
