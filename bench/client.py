"""A claimpay API client as a user's program would be: submit, poll, read the results."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import httpx
import orjson

from bench.config import API_KEY, USER
from producer.tokens import mint_token

BATCH_PATH = "/claim-prompt-pays-batch"
PIECE_BYTES = 1 << 20
"""A bytes body is handed to httpx in pieces of this size. Handed over whole, httpcore's
`SyncStream.write` copies the unsent rest of the body after every partial `send`
(encode/httpcore#1029): sending a 327 MB body took the bench 7 CPU-seconds, and the
1,000,000-row intake measured 33 MB/s where the API ran at over 100."""
TOKEN_TTL_S = 3600
LONG_POLL_S = 1


class JobFailed(Exception):
    """Raised when a submission is refused or a job does not complete in time."""


class ClaimpayClient:
    """One keep-alive HTTP connection to the API, authenticated as the bench user."""

    def __init__(self, base_url: str, jwt_secret: str) -> None:
        token = mint_token(jwt_secret, USER, TOKEN_TTL_S)
        self.http = httpx.Client(
            base_url=base_url,
            headers={"x-api-key": API_KEY, "Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(600, connect=10),
        )

    def close(self) -> None:
        self.http.close()

    def submit(self, database: str, body: bytes | Iterable[bytes]) -> str:
        """PUT a batch (bytes, sent with its Content-Length as a loading tool sends it,
        or an iterator of pieces sent chunked); the job ID."""
        headers = {"vbasoftware-database": database, "Content-Type": "application/json"}
        content = body
        if isinstance(body, bytes):
            headers["Content-Length"] = str(len(body))
            content = _pieces(body)
        response = self.http.put(BATCH_PATH, content=content, headers=headers)
        if response.status_code != 202:
            raise JobFailed(f"submit answered {response.status_code}: {response.text[:300]}")
        job_id: str = response.json()["data"]["jobId"]
        return job_id

    def status(self, job_id: str, prefer_wait_s: int = 0) -> dict[str, Any]:
        """The job's status; with `prefer_wait_s`, once it has ended or after that long."""
        headers = {"Prefer": f"wait={prefer_wait_s}"} if prefer_wait_s else None
        response = self.http.get(f"/jobs/{job_id}", headers=headers)
        if response.status_code != 200:
            raise JobFailed(f"status answered {response.status_code}: {response.text[:300]}")
        data: dict[str, Any] = orjson.loads(response.content)["data"]
        return data

    def wait(
        self, job_id: str, poll_s: float, timeout_s: float, check: Callable[[], None]
    ) -> dict[str, Any]:
        """Ask `GET /jobs/{id}` until the job is completed; its status. With `poll_s`, a
        request every `poll_s`; with 0, each request waits on the server (`Prefer: wait`)
        up to `LONG_POLL_S` for the job to end. `check` runs between requests (it raises
        if a process under test has died)."""
        deadline = time.monotonic() + timeout_s
        while True:
            data = self.status(job_id, prefer_wait_s=0 if poll_s else LONG_POLL_S)
            if data["state"] == "completed":
                return data
            if time.monotonic() > deadline:
                raise JobFailed(f"job {job_id} not completed after {timeout_s:g}s: {data}")
            check()
            time.sleep(poll_s)

    def result_statuses(self, job_id: str) -> Counter[int]:
        """How many rows of the 207 envelope got each status."""
        response = self.http.get(f"/jobs/{job_id}/results")
        if response.status_code != 207:
            raise JobFailed(f"results answered {response.status_code}: {response.text[:300]}")
        items = orjson.loads(response.content)["data"]
        return Counter(int(item["status"]) for item in items)


def _pieces(body: bytes) -> Iterator[bytes]:
    """`body` as views of `PIECE_BYTES` (no copies; httpx sends any bytes-like piece)."""
    view = memoryview(body)
    for at in range(0, len(body), PIECE_BYTES):
        yield cast(bytes, view[at : at + PIECE_BYTES])
