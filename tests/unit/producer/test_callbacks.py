"""`callbackUrl` hosts: any by default, else only those of CLAIMPAY_WEBHOOK_ALLOWED_HOSTS,
checked when the batch arrives and again before delivery."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from claimpay.jobstore import JobStore
from tests.factories import make_rows, make_settings
from tests.unit.producer.conftest import Api
from worker import webhooks

BATCH = "/claim-prompt-pays-batch"
ALLOWED = ["hooks.example.com", "*.partner.example.org"]
Headers = Callable[..., dict[str, str]]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("hooks.example.com", True),
        ("HOOKS.Example.com.", True),
        ("a.partner.example.org", True),
        ("deep.a.partner.example.org", True),
        ("partner.example.org", False),  # the wildcard names subdomains only
        ("evil-hooks.example.com", False),
        ("hooks.example.com.evil.net", False),
        ("169.254.169.254", False),
        ("localhost", False),
    ],
)
def test_allowed_hosts_are_exact_names_or_subdomains_of_a_wildcard(
    host: str, allowed: bool
) -> None:
    assert make_settings(webhook_allowed_hosts=ALLOWED).callback_host_allowed(host) is allowed
    assert make_settings().callback_host_allowed(host)  # no list: any host


def put(api: Api, headers: dict[str, str], callback: str) -> Any:
    return api.client.put(
        BATCH, content=json.dumps(make_rows(1)), headers=headers, params={"callbackUrl": callback}
    )


def test_a_callback_to_a_host_outside_the_list_is_refused(
    make_api: Callable[..., Api], auth_headers: Headers
) -> None:
    api = make_api(webhook_secret="s" * 32, webhook_allowed_hosts=ALLOWED)
    refused = put(api, auth_headers(), "http://169.254.169.254/latest/meta-data/")
    assert refused.status_code == 400
    assert refused.json()["error"]["type"].endswith("callback-not-allowed")
    assert api.enqueuer.queued == []
    assert put(api, auth_headers(), "https://hooks.example.com/claimpay").status_code == 202


def test_delivery_skips_a_host_no_longer_allowed(
    job_store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_store.begin(
        "j1",
        entity="claim-prompt-pays",
        database="demo",
        user="u",
        chunk_size=1,
        callback_url="http://10.0.0.7/hook",
    )
    job_store.seal("j1", total=0, chunk_nos=[])  # no rows: completed at once

    def no_post(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("posted to a host that is not allowed")

    monkeypatch.setattr(httpx, "post", no_post)
    settings = make_settings(webhook_secret="s" * 32, webhook_allowed_hosts=ALLOWED)
    assert webhooks.deliver(job_store, settings, "j1") is False


@pytest.mark.parametrize(
    "callback",
    [
        "http://0177.0.0.1/hook",  # octal: 127.0.0.1 to some parsers, invalid to httpx
        "http://0x7f.1/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://1.2.3.4.5/hook",
        "http://127.0.0.1./hook",
        "http://%31%32%37.0.0.1/hook",
        "http://hooks.example.com/a\r\nX-Injected: 1",
        "http://hooks.example.com/\nb",
        "http://hooks.example.com/a b",
        "http://hooks.example.com/\x00",
        "http://hooks.example.com/\x7f",
        "http://hooks\u200b.example.com/",
        "http://hooks.example.com:99999/",
        "http://hooks.example.com:0/",
        "http://[1.2.3.4]/hook",
        "http://[::1%25eth0]/hook",
        "http://-hooks.example.com/",
        "http://hooks..example.com/",
        "ftp://hooks.example.com/",
        "http:///hook",
    ],
)
def test_a_callback_no_worker_could_deliver_is_refused_at_submit(
    make_api: Callable[..., Api], auth_headers: Headers, callback: str
) -> None:
    api = make_api(webhook_secret="s" * 32)
    refused = put(api, auth_headers(), callback)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"].endswith("invalid-callback")
    assert api.enqueuer.queued == []


@pytest.mark.parametrize(
    "callback",
    [
        "https://user:pass@hooks.example.com/claimpay?token=abc#x",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "https://bücher.example/hook",
        "http://hooks.example.com./a%0D%0Ab",
        "http://internal_host/hook",
    ],
)
def test_a_deliverable_callback_is_accepted(
    make_api: Callable[..., Api], auth_headers: Headers, callback: str
) -> None:
    api = make_api(webhook_secret="s" * 32)
    assert put(api, auth_headers(), callback).status_code == 202


def test_delivery_skips_a_stored_url_no_client_can_send(
    job_store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_store.begin(
        "j2",
        entity="claim-prompt-pays",
        database="demo",
        user="u",
        chunk_size=1,
        callback_url="http://0177.0.0.1/hook",
    )
    job_store.seal("j2", total=0, chunk_nos=[])

    def no_post(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("posted to an undeliverable URL")

    monkeypatch.setattr(httpx, "post", no_post)
    assert webhooks.deliver(job_store, make_settings(webhook_secret="s" * 32), "j2") is False
