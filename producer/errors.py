"""What the producer refuses, as types: the routes and everything below them raise these,
and `producer.problems` alone turns them into problem responses (status, type, title).

The message of each is the problem's `detail`, written for the caller.
"""

from __future__ import annotations

from claimpay.errors import ClaimpayError


class RequestError(ClaimpayError):
    """Raised when a request cannot be served as asked."""

    def __init__(self, detail: str, *, activity_id: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.activity_id = activity_id
        """The activity ID to answer with (the refused job's ID); None: the request's."""


# -- the request ------------------------------------------------------------------------


class InvalidRequest(RequestError):
    """Raised when a parameter, header or the body of a request cannot be used."""


class MissingDatabase(InvalidRequest):
    """Raised when a call that needs a database does not name one."""


class UnconfiguredDatabase(InvalidRequest):
    """Raised when the database header names a database that is not configured."""


class InvalidCallback(InvalidRequest):
    """Raised when `callbackUrl` is not an http(s) URL with a host."""


class CallbackNotAllowed(InvalidRequest):
    """Raised when `callbackUrl` names a host outside `webhook_allowed_hosts`."""


class CallbacksDisabled(InvalidRequest):
    """Raised when a `callbackUrl` is given while no webhook secret is configured."""


class InvalidStatusFilter(InvalidRequest):
    """Raised when a status filter is neither a keyword nor HTTP codes and classes."""


class InvalidSort(InvalidRequest):
    """Raised when `sortBy` names an unknown field or direction."""


class HeadersTooLarge(RequestError):
    """Raised when a request has more headers, or larger ones, than the API reads."""


class BodyStalled(RequestError):
    """Raised when a request body stops coming, or comes too slowly (the request is
    dropped and its connection closed)."""


class UnsupportedMediaType(RequestError):
    """Raised when a batch body is declared as something other than JSON in UTF-8."""


class UnsupportedContentEncoding(UnsupportedMediaType):
    """Raised when a batch body is compressed (any `Content-Encoding` but identity)."""


# -- who is calling ---------------------------------------------------------------------


class Unauthenticated(RequestError):
    """Raised when a caller's credentials are missing or not valid."""

    challenge = "Bearer"
    """The authentication scheme the caller should use."""


class MissingApiKey(Unauthenticated):
    """Raised when the `x-api-key` header is missing."""


class InvalidApiKey(Unauthenticated):
    """Raised when the `x-api-key` header matches no configured key."""


class MissingBearerToken(Unauthenticated):
    """Raised when the `Authorization` header carries no bearer token."""


class InvalidBearerToken(Unauthenticated):
    """Raised when the bearer token fails the token policy."""


class BadCredentials(Unauthenticated):
    """Raised when `POST /user-authentication` cannot take its HTTP Basic credentials."""

    challenge = 'Basic realm="claimpay", charset="UTF-8"'


class MissingCredentials(BadCredentials):
    """Raised when the `Authorization` header carries no HTTP Basic credentials."""


class InvalidCredentials(BadCredentials):
    """Raised when HTTP Basic credentials are malformed, or name no user with that
    password (both look the same)."""


class DatabaseForbidden(RequestError):
    """Raised when the caller's API key or token may not use the database."""


class Throttled(RequestError):
    """Raised when an API key must wait before its next request."""

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class RateLimited(Throttled):
    """Raised when an API key sends requests faster than its rate limit."""


class TooManyActiveJobs(Throttled):
    """Raised when an API key already has its limit of unfinished jobs."""


class LoginLocked(Throttled):
    """Raised when a user name is locked after repeated failed logins."""


# -- jobs and rows ----------------------------------------------------------------------


class JobNotFound(RequestError):
    """Raised when a job does not exist, or belongs to a database the caller may not use."""


class JobLost(RequestError):
    """Raised when a job ID this job store issued names a job it lost (Redis was reset
    after the job was accepted; see `claimpay.jobids`)."""


class RowNotFound(RequestError):
    """Raised when an entity has no row with the requested key."""


class JobReceiving(RequestError):
    """Raised when a job is cancelled while its rows are still being received."""


class JobCompleted(RequestError):
    """Raised when a completed job is cancelled."""


class JobNotFinished(RequestError):
    """Raised when a rerun of a job is asked for before the job has ended."""


class RerunBusy(RequestError):
    """Raised when another rerun of the same job is being prepared."""


class IdempotencyConflict(RequestError):
    """Raised when an `Idempotency-Key` names an earlier job this request cannot reuse."""

    def __init__(self, detail: str, *, job_id: str) -> None:
        super().__init__(detail)
        self.job_id = job_id


class IdempotencyKeyInUse(IdempotencyConflict):
    """Raised when the request holding the same `Idempotency-Key` is still running."""


class IdempotencyKeyReused(IdempotencyConflict):
    """Raised when an `Idempotency-Key` comes back with a different request body."""


# -- the service itself -----------------------------------------------------------------


class ServiceBusy(ClaimpayError):
    """Raised when a request cannot be taken now (not the caller's fault); the caller may
    try again after `retry_after_s`."""

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s


class LoginBusy(ServiceBusy):
    """Raised when too many password checks already wait for their turn."""
