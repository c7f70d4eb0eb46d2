"""Issue 12, finding 2, against a real `claimpay api` process with real Argon2 hashes: a
flood of wrong passwords is mostly refused at once (503), the rest are checked a few at a
time, and another caller's requests are answered while those checks are still running."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from claimpay.passwords import hash_password
from producer.tokens import mint_token
from tests.credentials import basic
from tests.factories import API_KEY, JWT_SECRET
from tests.integration.api_process import ApiProcess, sqlite_api

pytestmark = pytest.mark.redis

FLOOD = 100


@pytest.fixture(scope="module")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    with sqlite_api(
        redis_url,
        tmp_path_factory.mktemp("loginflood"),
        f"cplogin{secrets.token_hex(4)}",
        CLAIMPAY_RATE_LIMIT_PER_S="0",
        CLAIMPAY_LOGIN_CONCURRENCY="2",
        CLAIMPAY_LOGIN_QUEUE="20",
        # The production cost (64 MiB, 3 passes): each check takes a real fraction of a second.
        CLAIMPAY_USERS=json.dumps(
            {"loader": {"password_hash": hash_password("right"), "databases": ["demo"]}}
        ),
    ) as process:
        yield process


def test_other_callers_are_answered_while_wrong_passwords_are_checked(api: ApiProcess) -> None:
    answered: list[int] = []
    lock = threading.Lock()

    def wrong_login(n: int) -> int:
        headers = {"x-api-key": API_KEY, "vbasoftware-database": "demo"}
        headers["Authorization"] = basic(f"guess{n}", "wrong")  # a name each: no lockout
        status = httpx.post(f"{api.base_url}/user-authentication", headers=headers, timeout=120)
        with lock:
            answered.append(status.status_code)
        return status.status_code

    token = mint_token(JWT_SECRET, "bob", 600)
    other = {"x-api-key": API_KEY, "Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(FLOOD) as pool:
        flood = [pool.submit(wrong_login, n) for n in range(FLOOD)]
        # The waiting room fills up: logins beyond it are refused at once.
        deadline = time.monotonic() + 120  # not a timing bound: the old code never gets there
        while True:
            with lock:
                if 503 in answered:
                    break
            assert time.monotonic() < deadline, f"no login refused: {sorted(answered)}"
            time.sleep(0.01)
        for _ in range(3):
            assert httpx.get(f"{api.base_url}/jobs", headers=other, timeout=120).is_success
        with lock:
            in_flight = FLOOD - len(answered)
        statuses = [future.result() for future in flood]
    # The other caller was answered while password checks were still waiting or running.
    assert in_flight > 0
    assert set(statuses) == {401, 503}
