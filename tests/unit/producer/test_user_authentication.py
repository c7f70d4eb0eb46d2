"""`POST /user-authentication`: Basic credentials + API key + database -> a bearer token,
as the seed API's clients get theirs; no telling unknown users from wrong passwords."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.credentials import PASSWORD, USER, basic, cheap_hash, key_pair
from tests.factories import API_KEY, JWT_SECRET, NARROW_KEY, make_rows
from tests.unit.producer.conftest import Api

LOGIN = "/user-authentication"
BATCH = "/claim-prompt-pays-batch"


@pytest.fixture
def users_api(make_api: Callable[..., Api]) -> Api:
    return make_api(
        users={
            USER: {"password_hash": cheap_hash(PASSWORD), "databases": ["demo", "acme"]},
            "acme-clerk": {"password_hash": cheap_hash("clerk pw"), "databases": ["acme"]},
            "ünïcode": {"password_hash": cheap_hash("pässwörd"), "databases": ["*"]},
        },
        token_ttl_s=3600,
    )


def login(api: Api, authorization: str | None, key: str | None = API_KEY, db: str = "demo") -> Any:
    headers = {"vbasoftware-database": db}
    if key is not None:
        headers["x-api-key"] = key
    if authorization is not None:
        headers["Authorization"] = authorization
    return api.client.post(LOGIN, headers=headers)


def test_valid_credentials_get_a_bearer_token_that_works(users_api: Api) -> None:
    response = login(users_api, basic(USER, PASSWORD))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    result = body["data"]["authenticationResult"]
    assert result["tokenType"] == "Bearer"
    assert result["expiresIn"] == 3600
    assert body["error"] is None
    assert body["debug"]["activityID"]
    claims = jwt.decode(result["idToken"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == USER
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["databases"] == ["acme", "demo"]
    headers = {
        "x-api-key": API_KEY,
        "Authorization": f"Bearer {result['idToken']}",
        "vbasoftware-database": "demo",
    }
    assert users_api.client.put(BATCH, json=make_rows(1), headers=headers).status_code == 202


def test_a_users_token_is_limited_to_the_users_databases(users_api: Api) -> None:
    token = login(users_api, basic("acme-clerk", "clerk pw"), db="acme").json()["data"]
    headers = {
        "x-api-key": API_KEY,
        "Authorization": f"Bearer {token['authenticationResult']['idToken']}",
    }
    on_acme = users_api.client.put(
        BATCH, json=make_rows(1), headers={**headers, "vbasoftware-database": "acme"}
    )
    on_demo = users_api.client.put(
        BATCH, json=make_rows(1), headers={**headers, "vbasoftware-database": "demo"}
    )
    assert on_acme.status_code == 202
    assert on_demo.status_code == 403
    assert on_demo.json()["error"]["detail"] == "This user may not use that database."


def test_unicode_names_and_passwords_are_utf8(users_api: Api) -> None:
    assert login(users_api, basic("ünïcode", "pässwörd")).status_code == 200


def comparable(response: Any) -> tuple[int, dict[str, Any], str]:
    error = response.json()["error"]
    return response.status_code, error, response.headers["www-authenticate"]


def test_unknown_user_and_wrong_password_get_the_same_answer(users_api: Api) -> None:
    wrong_password = login(users_api, basic(USER, "not the password"))
    unknown_user = login(users_api, basic("mallory", PASSWORD))
    empty_password = login(users_api, basic(USER, ""))
    assert wrong_password.status_code == 401
    assert comparable(wrong_password) == comparable(unknown_user) == comparable(empty_password)
    assert wrong_password.json()["error"]["type"] == "urn:claimpay:problem:invalid-credentials"
    assert "Basic" in wrong_password.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("authorization", "slug"),
    [
        (None, "missing-credentials"),
        ("Bearer abc", "missing-credentials"),
        ("Basic", "missing-credentials"),
        ("Basic !!!not-base64!!!", "invalid-credentials"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "invalid-credentials"),
        ("Basic " + base64.b64encode(b":password-without-user").decode(), "invalid-credentials"),
        ("Basic " + base64.b64encode(b"alice:\xff\xfe").decode(), "invalid-credentials"),
        ("Basic " + "QUFB" * 2000, "invalid-credentials"),
    ],
)
def test_missing_or_malformed_credentials_are_401(
    users_api: Api, authorization: str | None, slug: str
) -> None:
    response = login(users_api, authorization)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == f"urn:claimpay:problem:{slug}"


def test_order_api_key_then_credentials_then_database(users_api: Api) -> None:
    """401 for the key before the credentials, the credentials before the database."""
    no_key = login(users_api, basic("mallory", "x"), key=None, db="nowhere")
    assert (no_key.status_code, no_key.json()["error"]["type"][-15:]) == (401, "missing-api-key")
    bad_user = login(users_api, basic("mallory", "x"), db="nowhere")
    assert bad_user.json()["error"]["type"].endswith("invalid-credentials")
    unknown_db = login(users_api, basic(USER, PASSWORD), db="nowhere")
    assert (unknown_db.status_code, unknown_db.json()["error"]["type"][-16:]) == (
        400,
        "unknown-database",
    )
    no_db = users_api.client.post(
        LOGIN, headers={"x-api-key": API_KEY, "Authorization": basic(USER, PASSWORD)}
    )
    assert no_db.status_code == 400
    narrow_key = login(users_api, basic(USER, PASSWORD), key=NARROW_KEY, db="demo")
    assert narrow_key.status_code == 403
    clerk_on_demo = login(users_api, basic("acme-clerk", "clerk pw"), db="demo")
    assert clerk_on_demo.status_code == 403


def test_without_users_nobody_logs_in(api: Api) -> None:
    assert login(api, basic(USER, PASSWORD)).status_code == 401


def test_issuer_audience_and_rs256_apply_to_user_tokens(make_api: Callable[..., Api]) -> None:
    private, public = key_pair("rsa")
    api = make_api(
        users={USER: {"password_hash": cheap_hash(PASSWORD), "databases": ["*"]}},
        jwt_algorithm="RS256",
        jwt_algorithms=["RS256", "HS256"],
        jwt_private_key=private,
        jwt_public_key=public,
        jwt_issuer="claimpay-test",
        jwt_audience="claimpay-api",
    )
    token = login(api, basic(USER, PASSWORD)).json()["data"]["authenticationResult"]["idToken"]
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="claimpay-api")
    assert (claims["iss"], claims["aud"]) == ("claimpay-test", "claimpay-api")
    headers = {"x-api-key": API_KEY, "Authorization": f"Bearer {token}"}
    job = api.client.put(
        BATCH, json=make_rows(1), headers={**headers, "vbasoftware-database": "demo"}
    )
    assert job.status_code == 202


def test_an_issuer_that_signs_unaccepted_tokens_refuses_to_start(
    make_api: Callable[..., Api],
) -> None:
    with pytest.raises(RuntimeError, match="does not accept"):
        make_api(
            users={USER: {"password_hash": cheap_hash(PASSWORD), "databases": ["*"]}},
            jwt_algorithm="HS512",
            jwt_algorithms=["HS256"],
        )
