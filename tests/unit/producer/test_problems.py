"""The one table from domain errors to problem responses."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from claimpay.errors import ClaimpayError
from producer import errors
from producer.intake import MalformedBody
from producer.jsonguard import BadNumber
from producer.limits import BodyRejected, TooDeep
from producer.problems import PROBLEM_TYPES, Problem, problem_of, problem_type


def subclasses(cls: type[Exception]) -> list[type[Exception]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


RAISED = [error for error in subclasses(errors.RequestError) if not error.__subclasses__()]
"""The errors code raises (the others are categories)."""


@pytest.mark.parametrize("error", RAISED, ids=lambda cls: cls.__name__)
def test_every_request_error_has_a_problem_type_and_says_when_it_is_raised(
    error: type[errors.RequestError],
) -> None:
    assert issubclass(error, ClaimpayError)
    assert (error.__doc__ or "").startswith("Raised ")
    status, slug = problem_type(error.__new__(error))
    assert 400 <= status < 500
    assert slug


def test_a_subclass_not_listed_takes_its_base_problem_type() -> None:
    assert BadNumber not in PROBLEM_TYPES
    assert problem_type(BadNumber("x")) == problem_type(
        next(cls("x") for cls in BadNumber.__mro__ if cls in PROBLEM_TYPES)
    )


def test_titles_are_the_reason_phrases_and_do_not_follow_the_python_version() -> None:
    assert Problem(400, "x", "d").title == "Bad Request"
    assert Problem(429, "x", "d").title == "Too Many Requests"
    assert Problem(413, "x", "d").title == "Content Too Large"
    assert Problem(422, "x", "d").title == "Unprocessable Entity"


def test_headers_come_from_what_the_error_carries() -> None:
    throttled = problem_of(errors.RateLimited("slow down", retry_after_s=0.2), 5)
    assert (throttled.status, throttled.headers) == (429, {"Retry-After": "1"})
    basic = problem_of(errors.InvalidCredentials("no"), 5)
    assert basic.headers["WWW-Authenticate"].startswith("Basic ")
    assert problem_of(errors.InvalidApiKey("no"), 5).headers == {"WWW-Authenticate": "Bearer"}
    reused = problem_of(errors.IdempotencyKeyReused("other body", job_id="abc"), 5)
    assert (reused.status, reused.headers) == (422, {"Location": "/jobs/abc"})
    down = problem_of(RedisConnectionError("secret host:6379"), 7)
    assert (down.status, down.slug, down.headers) == (
        503,
        "job-store-unavailable",
        {"Retry-After": "7"},
    )
    assert "host" not in down.detail


def test_a_malformed_body_answers_with_the_refused_jobs_id() -> None:
    exc = MalformedBody("not an array")
    exc.activity_id = "job-1"
    problem = problem_of(exc, 5)
    assert (problem.status, problem.slug, problem.activity_id) == (400, "malformed-body", "job-1")
    assert isinstance(TooDeep("x"), BodyRejected)
    assert problem_of(TooDeep("x"), 5).status == 400
