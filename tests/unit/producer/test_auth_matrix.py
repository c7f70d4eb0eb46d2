"""Every combination of API key, bearer token and database header, against the batch call
and a job's status: the exact status and problem of the error contract, and no bypass."""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Callable
from typing import Any

import jwt
import orjson
import pytest

from producer.tokens import mint_token
from tests.credentials import hashed_key, key_pair
from tests.factories import API_KEY, JWT_SECRET, NARROW_KEY, make_rows
from tests.unit.producer.conftest import Api

BATCH = "/claim-prompt-pays-batch"
HASHED_PLAIN = "hashed-key-0f3b9c2e7a"
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs256-0123456789"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "alice", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(algorithm: str = "HS256", key: str = JWT_SECRET, **overrides: Any) -> str:
    return "Bearer " + jwt.encode(_claims(**overrides), key, algorithm=algorithm)


def _tampered() -> str:
    header, _, signature = mint_token(JWT_SECRET, "alice", 600).split(".")
    return f"Bearer {header}.{_b64(_claims(sub='admin'))}.{signature}"


# name -> (x-api-key, expected 401 slug or None when the key is good)
KEYS: dict[str, tuple[str | None, str | None]] = {
    "missing": (None, "missing-api-key"),
    "empty": ("", "missing-api-key"),
    "wrong": ("not-a-configured-key", "invalid-api-key"),
    "the configured hash itself": (hashed_key(HASHED_PLAIN), "invalid-api-key"),
    "a prefix of a key": (API_KEY[:-1], "invalid-api-key"),
    "plain": (API_KEY, None),
    "hashed": (HASHED_PLAIN, None),
    "narrow (acme only)": (NARROW_KEY, None),
}
NOW = int(time.time())
# name -> (Authorization, expected 401 slug or None when the token is good)
TOKENS: dict[str, tuple[str | None, str | None]] = {
    "missing": (None, "missing-bearer-token"),
    "basic scheme": ("Basic YWxpY2U6cHc=", "missing-bearer-token"),
    "empty bearer": ("Bearer ", "missing-bearer-token"),
    "malformed": ("Bearer not-a-jwt", "invalid-bearer-token"),
    "two parts": ("Bearer a.b", "invalid-bearer-token"),
    "wrong signature": (_signed(key=OTHER_SECRET), "invalid-bearer-token"),
    "tampered payload": (_tampered(), "invalid-bearer-token"),
    "expired": (_signed(exp=NOW - 3600), "invalid-bearer-token"),
    "not yet valid (nbf)": (_signed(nbf=NOW + 3600), "invalid-bearer-token"),
    "issued in the future (iat)": (_signed(iat=NOW + 3600), "invalid-bearer-token"),
    "alg none": (
        f"Bearer {_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "invalid-bearer-token",
    ),
    "wrong algorithm (HS512)": (_signed("HS512"), "invalid-bearer-token"),
    "RS256 not configured": (_signed("RS256", key_pair("rsa")[0]), "invalid-bearer-token"),
    "no exp": (_signed(exp=None), "invalid-bearer-token"),
    "no sub": (_signed(sub=None), "invalid-bearer-token"),
    "valid": (_signed(), None),
    "valid, user limited to acme": (_signed(databases=["acme"]), None),
}
DATABASES = {"missing": None, "unknown": "nowhere", "demo": "demo", "acme": "acme"}


def _headers(key: str | None, token: str | None, database: str | None) -> dict[str, str]:
    values = {"x-api-key": key, "Authorization": token, "vbasoftware-database": database}
    return {name: value for name, value in values.items() if value is not None}


def _expected_batch(key: str, token: str, database: str) -> tuple[int, str | None]:
    key_slug, token_slug = KEYS[key][1], TOKENS[token][1]
    if key_slug or token_slug:
        return 401, key_slug or token_slug
    if database in ("missing", "unknown"):
        return 400, f"{database}-database"
    key_forbids = key.startswith("narrow") and database == "demo"
    token_forbids = "acme" in token and database == "demo"
    if key_forbids or token_forbids:
        return 403, "database-forbidden"
    return 202, None


def _expected_status(key: str, token: str, database: str) -> tuple[int, str | None]:
    """A job on `demo`: visible to callers allowed on demo, with no or a matching header."""
    key_slug, token_slug = KEYS[key][1], TOKENS[token][1]
    if key_slug or token_slug:
        return 401, key_slug or token_slug
    allowed = not key.startswith("narrow") and "acme" not in token
    if allowed and database in ("missing", "demo"):
        return 200, None
    return 404, "job-not-found"


def _mismatch(response: Any, status: int, slug: str | None) -> str | None:
    """Why `response` is not exactly the expected answer, or None."""
    if response.status_code != status:
        return f"status {response.status_code} != {status}: {response.text[:200]}"
    if slug is None:
        return None
    body = response.json()
    error = body["error"]
    expected = {
        "type": f"urn:claimpay:problem:{slug}",
        "status": status,
        "instance": response.request.url.path,
    }
    if body["data"] is not None or {k: error[k] for k in expected} != expected:
        return f"problem {error} != {expected}"
    if not error["title"] or not error["detail"] or not body["debug"]["activityID"]:
        return f"incomplete problem {body}"
    if "Traceback" in response.text or 'File "' in response.text:
        return "a stack trace in the body"
    if status == 401 and "www-authenticate" not in response.headers:
        return "401 without WWW-Authenticate"
    return None


def _run_matrix(
    api: Api, call: Callable[[dict[str, str]], Any], expect: Callable[..., tuple[int, str | None]]
) -> tuple[list[str], int]:
    failures, bypasses = [], 0
    for key, token, database in itertools.product(KEYS, TOKENS, DATABASES):
        status, slug = expect(key, token, database)
        headers = _headers(KEYS[key][0], TOKENS[token][0], DATABASES[database])
        response = call(headers)
        if status >= 300 and response.status_code < 300:
            bypasses += 1
        if why := _mismatch(response, status, slug):
            failures.append(f"key={key} token={token} database={database}: {why}")
    return failures, bypasses


@pytest.fixture
def matrix_api(make_api: Callable[..., Api]) -> Api:
    return make_api(
        api_keys={API_KEY: ["*"], NARROW_KEY: ["acme"], hashed_key(HASHED_PLAIN): ["*"]},
        rate_limit_per_s=0,
        max_active_jobs_per_key=0,
    )


def test_batch_call_auth_matrix(matrix_api: Api) -> None:
    body = orjson.dumps(make_rows(2))
    jobs_before = len(matrix_api.store.redis.keys("t:job:*:chunks"))

    def call(headers: dict[str, str]) -> Any:
        return matrix_api.client.put(BATCH, content=body, headers=headers)

    failures, bypasses = _run_matrix(matrix_api, call, _expected_batch)
    assert failures == []
    assert bypasses == 0
    accepted = sum(
        1
        for combo in itertools.product(KEYS, TOKENS, DATABASES)
        if _expected_batch(*combo)[0] == 202
    )
    assert len(matrix_api.enqueuer.queued) == accepted
    assert len(matrix_api.store.redis.keys("t:job:*:chunks")) - jobs_before == accepted


def test_job_status_auth_matrix(matrix_api: Api) -> None:
    token = "Bearer " + mint_token(JWT_SECRET, "alice", 600)
    submitted = matrix_api.client.put(
        BATCH,
        content=orjson.dumps(make_rows(1)),
        headers=_headers(API_KEY, token, "demo"),
    )
    job_id = submitted.json()["data"]["jobId"]

    def call(headers: dict[str, str]) -> Any:
        return matrix_api.client.get(f"/jobs/{job_id}", headers=headers)

    failures, bypasses = _run_matrix(matrix_api, call, _expected_status)
    assert failures == []
    assert bypasses == 0
