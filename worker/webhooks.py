"""Completion webhooks: the finished job's summary, signed, POSTed to its `callbackUrl`.

Each attempt is bounded by one wall-clock deadline, `webhook_timeout_s`, from connecting
to the status line (httpx's own timeouts bound each read, so a receiver trickling a byte
every few seconds would otherwise hold the sender for ever). The answer's body is never
read. Attempts run in the webhook senders of a worker node (`worker.sender`), never in the
processes that apply chunks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

import httpx
import orjson

from claimpay.callbacks import undeliverable
from claimpay.envelope import envelope
from claimpay.jobstore import JobStore
from claimpay.settings import Settings
from claimpay.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from worker.errors import WorkerError

log = logging.getLogger("claimpay.webhooks")


class WebhookFailed(WorkerError):
    """Raised when the receiver is unreachable or answers other than 2xx; retried."""


def deliver(store: JobStore, settings: Settings, job_id: str) -> bool:
    """POST the job's summary to its callback; False when there is nothing to send."""
    meta = store.meta(job_id)
    if meta is None or not meta.callback_url or not meta.state.terminal:
        return False
    if settings.webhook_secret is None:
        log.warning("job %s: webhook skipped, CLAIMPAY_WEBHOOK_SECRET is unset", job_id)
        return False
    host = urlsplit(meta.callback_url).hostname or ""
    if not settings.callback_host_allowed(host):  # the allowed hosts changed since
        log.warning("job %s: webhook skipped, its host is not allowed", job_id)
        return False
    if why := undeliverable(meta.callback_url):  # stored before submit checked it
        log.warning("job %s: webhook skipped, its URL %s", job_id, why)
        return False
    body = orjson.dumps(envelope(store.statuses([meta])[0], job_id))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(settings.webhook_secret.get_secret_value(), timestamp, body),
    }
    status = post_within(meta.callback_url, body, headers, settings.webhook_timeout_s)
    if not 200 <= status < 300:
        raise WebhookFailed(f"HTTP {status}")
    log.info("job %s: webhook delivered", job_id)
    return True


def post_within(url: str, body: bytes, headers: dict[str, str], deadline_s: float) -> int:
    """POST `body` and return the answer's status code, all within `deadline_s` seconds of
    wall-clock time; raises `WebhookFailed` when the receiver fails or is too slow."""
    loop = asyncio.new_event_loop()
    try:
        attempt = asyncio.wait_for(_post(url, body, headers, deadline_s), deadline_s)
        return loop.run_until_complete(attempt)
    except TimeoutError as exc:
        raise WebhookFailed(f"no answer within {deadline_s:g}s") from exc
    except httpx.HTTPError as exc:
        raise WebhookFailed(type(exc).__name__) from exc
    finally:
        # Not `asyncio.run`: it would wait for a name lookup still running in a thread.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    async with (
        httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client,
        client.stream("POST", url, content=body, headers=headers) as response,
    ):
        return response.status_code
