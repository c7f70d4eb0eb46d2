"""Issue 12, finding 2: a flood of wrong passwords on `POST /user-authentication` waits in
a bounded place of its own (503 with `Retry-After` at once beyond it), never in the thread
pool every route shares, so other callers are answered while it lasts; repeated failures
for one user name lock that name for a while (429 with `Retry-After`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from fastapi.testclient import TestClient

from tests.credentials import PASSWORD, USER, basic, cheap_hash
from tests.factories import API_KEY
from tests.unit.producer.conftest import Api

LOGIN = "/user-authentication"
FLOOD = 60


class StalledHasher(PasswordHasher):
    """Verifies nothing until released, then refuses every password: each check stays in
    flight as long as the test wants (a deterministic stand-in for Argon2's cost)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.started += 1
        self.release.wait(60)
        raise VerifyMismatchError


@pytest.fixture
def users_api(make_api: Callable[..., Api]) -> Api:
    return make_api(
        users={USER: {"password_hash": cheap_hash(PASSWORD), "databases": ["demo"]}},
        rate_limit_per_s=0,
        login_concurrency=2,
        login_queue=8,
    )


@pytest.fixture
def served(users_api: Api) -> Iterator[TestClient]:
    """One event loop for every request (as uvicorn serves them), not one per request."""
    with TestClient(users_api.client.app, raise_server_exceptions=False) as client:
        yield client


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    """Not a timing bound: what never happens (the old code) fails instead of hanging."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def login(client: TestClient, user: str, password: str) -> Any:
    headers = {"x-api-key": API_KEY, "vbasoftware-database": "demo"}
    return client.post(LOGIN, headers={**headers, "Authorization": basic(user, password)})


def test_other_callers_are_answered_while_a_login_flood_is_in_flight(
    users_api: Api, served: TestClient, auth_headers: Callable[..., dict[str, str]]
) -> None:
    hasher = StalledHasher()
    served.app.state.gatekeeper.users.hasher = hasher  # type: ignore[attr-defined]
    pool = ThreadPoolExecutor(FLOOD)
    try:
        flood = [pool.submit(login, served, f"user{n}", "wrong") for n in range(FLOOD)]
        # Beyond the 2 checking and the 8 waiting, every login is refused at once.
        wait_until(lambda: sum(f.done() for f in flood) >= FLOOD - 10)
        refused = [f.result() for f in flood if f.done()]
        assert len(refused) == FLOOD - 10
        assert {r.status_code for r in refused} == {503}
        assert {r.headers["Retry-After"] for r in refused} == {"1"}
        assert refused[0].json()["error"]["type"].endswith("login-busy")

        # The ten admitted are still in flight; everything else is answered meanwhile.
        headers = auth_headers(database="demo")
        others = [
            pool.submit(served.get, "/jobs", headers=headers),
            pool.submit(served.get, "/jobs/" + "0" * 32, headers=headers),
            pool.submit(served.get, "/health/live"),
        ]
        answers = [f.result(timeout=30) for f in others]
        assert [a.status_code for a in answers] == [200, 404, 200]
        assert hasher.started == 2  # no password check finished: the flood is in flight
        assert sum(f.done() for f in flood) == FLOOD - 10
    finally:
        hasher.release.set()
        pool.shutdown(wait=True)
    assert [f.result().status_code for f in flood].count(401) == 10


def test_repeated_failures_lock_the_user_name_for_a_while(users_api: Api) -> None:
    client = users_api.client
    for _ in range(5):  # CLAIMPAY_LOGIN_MAX_FAILURES
        assert login(client, USER, "wrong").status_code == 401
    locked = login(client, USER, PASSWORD)  # even the right password, while locked
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 300  # CLAIMPAY_LOGIN_LOCKOUT_S
    assert locked.json()["error"]["type"].endswith("login-locked")
    assert login(client, "someone-else", "wrong").status_code == 401  # other names: not


def test_a_successful_login_clears_the_failures(users_api: Api) -> None:
    client = users_api.client
    for _ in range(4):
        assert login(client, USER, "wrong").status_code == 401
    assert login(client, USER, PASSWORD).status_code == 200
    for _ in range(4):
        assert login(client, USER, "wrong").status_code == 401
    assert login(client, USER, PASSWORD).status_code == 200


def test_unknown_user_names_are_locked_like_known_ones(users_api: Api) -> None:
    client = users_api.client
    for _ in range(5):
        assert login(client, "nobody", "wrong").status_code == 401
    assert login(client, "nobody", "wrong").status_code == 429


def test_lockout_can_be_turned_off(make_api: Callable[..., Api]) -> None:
    api = make_api(
        users={USER: {"password_hash": cheap_hash(PASSWORD), "databases": ["demo"]}},
        rate_limit_per_s=0,
        login_max_failures=0,
    )
    for _ in range(8):
        assert login(api.client, USER, "wrong").status_code == 401
    assert login(api.client, USER, PASSWORD).status_code == 200
