"""`env=prod` refuses to start with weak or missing secrets and without API keys."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from claimpay.settings import Settings
from tests.credentials import hashed_key, key_pair
from tests.factories import API_KEY, JWT_SECRET, NARROW_KEY, make_settings

STRONG = "Zq3v9Lr2Tx8Wm4Pk7Nd1Hs6Bf0Gj5Yc2Ue8Ra"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("CLAIMPAY_")]:
        monkeypatch.delenv(name)


def test_a_sound_production_configuration_starts() -> None:
    settings = make_settings(env="prod", jwt_secret=STRONG)
    assert settings.env == "prod"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (None, "CLAIMPAY_JWT_SECRET is not set"),
        ("", "CLAIMPAY_JWT_SECRET is not set"),
        ("short-but-random-9f3a", "shorter than 32 bytes"),
        ("changeme", "placeholder"),
        ("a" * 64, "too few characters"),
        ("abababababababababababababababababab", "too few characters"),
    ],
)
def test_production_refuses_a_missing_or_weak_jwt_secret(secret: str | None, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        make_settings(env="prod", jwt_secret=secret)


def test_production_refuses_to_run_without_api_keys() -> None:
    with pytest.raises(ValidationError, match="CLAIMPAY_API_KEYS is empty"):
        make_settings(env="prod", jwt_secret=STRONG, api_keys={})


@pytest.mark.parametrize("weak", ["k", "fifteen-chars-k"])
def test_production_refuses_a_short_plaintext_api_key(weak: str) -> None:
    with pytest.raises(ValidationError, match="shorter than 16 characters") as refused:
        make_settings(env="prod", jwt_secret=STRONG, api_keys={API_KEY: ["*"], weak: ["demo"]})
    assert f"'{weak}'" not in str(refused.value)


def test_production_accepts_keys_of_16_characters_and_hashed_keys_of_any() -> None:
    keys = {"sixteen-chars-ok": ["*"], hashed_key("k"): ["demo"], NARROW_KEY: ["acme"]}
    assert make_settings(env="prod", jwt_secret=STRONG, api_keys=keys).api_keys == keys


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("", "shorter than 32 bytes"),
        ("w", "shorter than 32 bytes"),
        ("short-webhook-secret-9f3a0c1b7e", "shorter than 32 bytes"),  # 31 bytes
        ("changeme", "placeholder"),
        ("a" * 40, "too few characters"),
    ],
)
def test_production_refuses_a_weak_webhook_secret(secret: str, why: str) -> None:
    with pytest.raises(ValidationError, match=f"CLAIMPAY_WEBHOOK_SECRET .*{why}") as refused:
        make_settings(env="prod", jwt_secret=STRONG, webhook_secret=secret)
    assert not secret or secret not in str(refused.value)


def test_production_accepts_a_webhook_secret_of_32_bytes_or_none() -> None:
    secret = "Wk3v9Lr2Tx8Wm4Pk7Nd1Hs6Bf0Gj5Yc2"
    assert len(secret.encode()) == 32
    assert make_settings(env="prod", jwt_secret=STRONG, webhook_secret=secret).webhook_secret
    assert make_settings(env="prod", jwt_secret=STRONG).webhook_secret is None


def test_development_accepts_short_keys_and_webhook_secrets() -> None:
    settings = make_settings(api_keys={"k": ["*"]}, webhook_secret="w")
    assert settings.env == "dev"


def test_the_refusal_never_quotes_the_secret() -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(env="prod", jwt_secret="tiny-secret-value")
    assert "tiny-secret-value" not in str(refused.value)


def test_production_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMPAY_ENV", "prod")
    monkeypatch.setenv("CLAIMPAY_JWT_SECRET", "x")
    with pytest.raises(ValidationError, match="env=prod refuses to start"):
        Settings(_env_file=None)


def test_public_key_only_production_needs_no_hmac_secret() -> None:
    _, public = key_pair("rsa")
    settings = make_settings(
        env="prod",
        jwt_secret=None,
        jwt_algorithm="RS256",
        jwt_algorithms=["RS256"],
        jwt_public_key=public,
    )
    assert settings.accepted_jwt_algorithms() == ["RS256"]


def test_development_tolerates_what_production_refuses() -> None:
    settings = make_settings(env="dev", jwt_secret="dev", api_keys={})
    assert settings.env == "dev"
    assert make_settings().jwt_secret is not None
    assert len(JWT_SECRET) >= 32
