"""What a log line may not show of a URL: its userinfo, query string and fragment.

A callback URL can carry credentials (`https://user:pass@host/...`) or a token in its query
(`?token=...`); so can a request path in an access log. Every log line goes through
`redact_urls` (see `claimpay.logs.RedactUrls`), whichever library logged it (httpx's
`HTTP Request: POST ...`, uvicorn, Celery, ours): `https://***@host/path?***`.
"""

from __future__ import annotations

import re

REDACTED = "***"
_URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)"
    r"(?P<authority>[^\s/?#\"'<>\\]*)"
    r"(?P<path>[^\s?#\"'<>\\]*)"
    r"(?P<query>\?[^\s#\"'<>\\]*)?"
    r"(?P<fragment>#[^\s\"'<>\\]*)?"
)
_PATH_QUERY = re.compile(r"(?P<path>(?<![\w/.:-])/[^\s?#\"'<>\\]*)\?[^\s\"'<>\\]*")
"""A bare request path with a query (`/jobs/1?token=...`), as an access log shows it."""


def redact_urls(text: str) -> str:
    """`text` with the userinfo, query string and fragment of every URL it quotes, and the
    query of every request path, replaced by `***`."""
    if "://" in text:
        text = _URL.sub(_redact_url, text)
    if "?" in text and "/" in text:
        text = _PATH_QUERY.sub(lambda m: f"{m['path']}?{REDACTED}", text)
    return text


def _redact_url(match: re.Match[str]) -> str:
    authority = match["authority"]
    if "@" in authority:
        authority = f"{REDACTED}@{authority.rpartition('@')[2]}"
    query = f"?{REDACTED}" if match["query"] else ""
    fragment = f"#{REDACTED}" if match["fragment"] else ""
    return f"{match['scheme']}{authority}{match['path']}{query}{fragment}"
