"""The app's gatekeeping, built once by `create_app`: authentication, users, rate and job
limits. Routes reach it through the dependencies in `producer.deps`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from claimpay.jobstore import JobStore
from claimpay.passwords import User, UserDirectory
from claimpay.settings import Settings
from producer.auth import Authenticator, Caller
from producer.errors import RateLimited, TooManyActiveJobs
from producer.joblimit import ActiveJobs
from producer.logins import FailedLogins, LoginGate
from producer.ratelimit import RateLimiter
from producer.tokens import TokenIssuer


@dataclass
class Gatekeeper:
    """Everything that decides whether a request may go on."""

    authenticator: Authenticator
    users: UserDirectory
    issuer: TokenIssuer | None
    rate_limiter: RateLimiter | None
    active_jobs: ActiveJobs | None
    retry_after_s: int
    """`Retry-After` of a refusal for too many unfinished jobs."""
    login_gate: LoginGate
    failed_logins: FailedLogins

    @classmethod
    def build(cls, settings: Settings, store: JobStore) -> Gatekeeper:
        """Raises `RuntimeError` for a configuration the API must not start with."""
        authenticator = Authenticator.from_settings(settings)
        users = UserDirectory(
            {
                name: User(name, user.password_hash.get_secret_value(), frozenset(user.databases))
                for name, user in settings.users.items()
            },
            max_concurrent=settings.login_concurrency,
        )
        issuer = _issuer(settings)
        limiter = None
        if settings.rate_limit_per_s > 0:
            limiter = RateLimiter(
                store.redis, store.store_keys, settings.rate_limit_per_s, settings.rate_limit_burst
            )
        jobs = ActiveJobs(store, settings.max_active_jobs_per_key)
        return cls(
            authenticator=authenticator,
            users=users,
            issuer=issuer,
            rate_limiter=limiter,
            active_jobs=jobs if settings.max_active_jobs_per_key else None,
            retry_after_s=settings.retry_after_s,
            login_gate=LoginGate(
                users,
                settings.login_concurrency,
                settings.login_queue,
                settings.login_busy_retry_after_s,
            ),
            failed_logins=FailedLogins(
                store, settings.login_max_failures, settings.login_lockout_s
            ),
        )

    def throttle(self, key_id: str) -> None:
        """Spend one request of the key's rate; `RateLimited` when it is spent."""
        if self.rate_limiter is None:
            return
        decision = self.rate_limiter.hit(key_id)
        if not decision.allowed:
            raise RateLimited(
                "This API key sends requests faster than its rate limit; retry later.",
                retry_after_s=decision.retry_after_s,
            )

    def release_job(self, caller: Caller, job_id: str) -> None:
        """The job was refused before it existed: its slot is free again at once."""
        if self.active_jobs is not None:
            self.active_jobs.release(caller.key_id, job_id)

    def admit_job(self, caller: Caller, job_id: str) -> None:
        """Count a new job against the caller's key; `TooManyActiveJobs` while it has too
        many unfinished."""
        if self.active_jobs is None or self.active_jobs.admit(caller.key_id, job_id):
            return
        raise TooManyActiveJobs(
            "This API key has too many unfinished jobs; retry when one has finished.",
            retry_after_s=self.retry_after_s,
        )


def _issuer(settings: Settings) -> TokenIssuer | None:
    """The token issuer; required (and able to sign accepted tokens) when users exist."""
    try:
        issuer = TokenIssuer.from_settings(settings)
    except RuntimeError:
        if settings.users:
            raise
        return None
    if settings.users and issuer.algorithm not in settings.accepted_jwt_algorithms():
        raise RuntimeError(
            f"CLAIMPAY_JWT_ALGORITHM {issuer.algorithm} signs user tokens that "
            "CLAIMPAY_JWT_ALGORITHMS does not accept"
        )
    return issuer


def get_gatekeeper(request: Request) -> Gatekeeper:
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    return gatekeeper


GatekeeperDep = Annotated[Gatekeeper, Depends(get_gatekeeper)]
