"""URLs in log lines keep their scheme, host, port and path; userinfo and query go."""

from __future__ import annotations

import pytest

from claimpay.redaction import redact_urls


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (
            "POST http://user:pass@127.0.0.1:8080/hook?token=abc&x=1 done",
            "POST http://***@127.0.0.1:8080/hook?*** done",
        ),
        ("to https://h.example/p#access_token=x.", "to https://h.example/p#***"),
        ("redis://:s3cr@t@redis:6379/0 is up", "redis://***@redis:6379/0 is up"),
        ("url='https://a:b@h/?q=1' x", "url='https://***@h/?***' x"),
        ("GET /jobs/abc/results?status=5xx 200", "GET /jobs/abc/results?*** 200"),
        ("two http://a@h1/?x and http://h2/y?z", "two http://***@h1/?*** and http://h2/y?***"),
    ],
)
def test_userinfo_query_and_fragment_are_replaced(text: str, redacted: str) -> None:
    assert redact_urls(text) == redacted


@pytest.mark.parametrize(
    "text",
    ["job 9f done: 3 rows", "http://hooks.example.com/claimpay", "why? a/b? 50%", "ratio 1/2?"],
)
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert redact_urls(text) == text
