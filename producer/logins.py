"""Password checks of `POST /user-authentication`, kept from starving the rest of the API.

- `LoginGate`: Argon2 checks run on threads of their own (`login_concurrency`), never in
  the thread pool every route shares; at most `login_queue` more wait for one, and a
  check that would wait beyond that is refused at once (`LoginBusy`: 503 with
  `Retry-After`).
- `FailedLogins`: after `login_max_failures` failed checks for one user name, that name is
  locked for `login_lockout_s` from its last failure (`LoginLocked`: 429 with
  `Retry-After`): its password is not checked at all meanwhile. Counted in the job store's
  Redis, so every API process of the deployment shares it; the name is kept there only as
  a digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor

from claimpay.jobqueries import ProducerQueries
from claimpay.passwords import User, UserDirectory
from producer.errors import LoginBusy, LoginLocked


class LoginGate:
    """A bounded waiting room in front of a few password-checking threads."""

    def __init__(
        self, users: UserDirectory, concurrency: int, queue: int, busy_retry_after_s: int
    ) -> None:
        self._users = users
        self._busy_retry_after_s = busy_retry_after_s
        self._capacity = concurrency + queue
        self._admitted = 0
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="claimpay-login")

    async def check(self, name: str, password: str) -> User | None:
        """The user if the password is theirs, else None; `LoginBusy` at once when full."""
        with self._lock:
            if self._admitted >= self._capacity:
                raise LoginBusy(
                    "Too many password checks are waiting; retry shortly.",
                    retry_after_s=self._busy_retry_after_s,
                )
            self._admitted += 1
        try:
            future = self._executor.submit(self._users.check, name, password)
            return await asyncio.wrap_future(future)
        finally:
            with self._lock:
                self._admitted -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class FailedLogins:
    """Failed password checks per user name, counted in the job store, each name's count
    expiring `lockout_s` after its last failure."""

    def __init__(self, store: ProducerQueries, max_failures: int, lockout_s: int) -> None:
        self._store = store
        self._max = max_failures
        self._lockout_s = lockout_s

    @staticmethod
    def _digest(name: str) -> str:
        return hashlib.sha256(name.encode()).hexdigest()[:32]

    def refuse_if_locked(self, name: str) -> None:
        """`LoginLocked` (429 with `Retry-After`) while `name` is locked."""
        if self._max <= 0:
            return
        count, pttl = self._store.login_failures(self._digest(name))
        if count < self._max or pttl <= 0:
            return
        raise LoginLocked(
            "Too many failed logins for this user name; retry later.",
            retry_after_s=math.ceil(pttl / 1000),
        )

    def failed(self, name: str) -> None:
        if self._max > 0:
            self._store.count_login_failure(self._digest(name), self._lockout_s)

    def succeeded(self, name: str) -> None:
        if self._max > 0:
            self._store.clear_login_failures(self._digest(name))
