"""Completion webhooks: the finished job's summary, signed, POSTed to its `callbackUrl`."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import httpx
import orjson

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
    body = orjson.dumps(envelope(meta.public(), job_id))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(settings.webhook_secret.get_secret_value(), timestamp, body),
    }
    try:
        response = httpx.post(
            meta.callback_url, content=body, headers=headers, timeout=settings.webhook_timeout_s
        )
    except httpx.HTTPError as exc:
        raise WebhookFailed(type(exc).__name__) from exc
    if not response.is_success:
        raise WebhookFailed(f"HTTP {response.status_code}")
    log.info("job %s: webhook delivered", job_id)
    return True
