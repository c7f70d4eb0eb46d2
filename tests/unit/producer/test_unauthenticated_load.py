"""Issue 12, finding 9 (in process): `/health/ready` is computed by one caller at a time,
off the shared thread pool, and reused briefly; too many or too large headers get 431
from the middleware whatever the server (`claimpay api` refuses them earlier: see
`tests/integration/test_slow_clients.py`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from producer.readiness import Readiness
from tests.unit.producer.conftest import Api

CALLERS = 50


def wait_until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    """Not a timing bound: what never happens fails instead of hanging."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def test_many_readiness_callers_share_one_run_and_others_are_served_meanwhile(
    make_api: Callable[..., Api], auth_headers: Callable[..., dict[str, str]]
) -> None:
    api = make_api(readiness_cache_s=1.0)
    release = threading.Event()
    pings: list[int] = []

    def stalled_ping() -> None:
        pings.append(1)
        release.wait(60)

    with TestClient(api.client.app, raise_server_exceptions=False) as client:
        readiness: Readiness = client.app.state.readiness  # type: ignore[attr-defined]
        readiness._ping_redis = stalled_ping
        pool = ThreadPoolExecutor(CALLERS + 1)
        try:
            probes = [pool.submit(client.get, "/health/ready") for _ in range(CALLERS)]
            wait_until(lambda: len(pings) == 1)
            # Every probe waits for that one run; the rest of the API is served meanwhile.
            other = pool.submit(client.get, "/jobs", headers=auth_headers(database="demo"))
            assert other.result(timeout=30).status_code == 200
            assert not any(probe.done() for probe in probes)
        finally:
            release.set()
            answers = [probe.result(timeout=60) for probe in probes]
            pool.shutdown()
        assert {answer.status_code for answer in answers} == {200}
        assert readiness.runs == 1
        assert len(pings) == 1


def test_a_fresh_answer_is_reused_and_a_stale_one_recomputed(
    make_api: Callable[..., Api],
) -> None:
    with TestClient(make_api(readiness_cache_s=60).client.app) as client:
        for _ in range(5):
            assert client.get("/health/ready").status_code == 200
        assert client.app.state.readiness.runs == 1  # type: ignore[attr-defined]
    with TestClient(make_api(readiness_cache_s=0).client.app) as client:
        for _ in range(3):
            assert client.get("/health/ready").status_code == 200
        assert client.app.state.readiness.runs == 3  # type: ignore[attr-defined]


def test_too_many_headers_get_431(api: Api) -> None:
    headers = {f"x-h{n}": "v" for n in range(150)}
    response = api.client.get("/health/live", headers=headers)
    assert response.status_code == 431
    assert response.json()["error"]["type"].endswith("headers-too-large")
    assert response.headers["connection"] == "close"


def test_headers_too_large_in_all_get_431(api: Api) -> None:
    response = api.client.get("/health/live", headers={"x-big": "a" * 40_000})
    assert response.status_code == 431


def test_ordinary_headers_pass(api: Api) -> None:
    response = api.client.get("/health/live", headers={f"x-h{n}": "v" * 100 for n in range(50)})
    assert response.status_code == 200
