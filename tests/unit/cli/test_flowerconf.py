"""`claimpay flower`: auth from settings; never open to the network in production."""

from __future__ import annotations

import pytest

from claimpay.settings import Settings
from cli.flowerconf import FlowerRefused, flower_environment, is_loopback
from tests.factories import make_settings

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (what a container binds)


def settings_in(env: str, **values: object) -> Settings:
    """Settings as they would read in `env` (prod's own checks are not the point here)."""
    return make_settings(**values).model_copy(update={"env": env})


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize("address", [ALL_INTERFACES, "10.0.0.5", "flower.internal", "::"])
def test_other_addresses(address: str) -> None:
    assert not is_loopback(address)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_basic_auth_comes_from_settings(env: str) -> None:
    settings = settings_in(env, flower_basic_auth="ops:s3cret,viewer:pw")
    assert flower_environment(settings, ALL_INTERFACES) == {
        "FLOWER_BASIC_AUTH": "ops:s3cret,viewer:pw"
    }


def test_loopback_without_auth_opens_the_api_to_the_local_user() -> None:
    assert flower_environment(settings_in("prod"), "127.0.0.1") == {
        "FLOWER_UNAUTHENTICATED_API": "true"
    }


def test_production_refuses_flower_on_the_network_without_auth() -> None:
    with pytest.raises(FlowerRefused, match="CLAIMPAY_FLOWER_BASIC_AUTH"):
        flower_environment(settings_in("prod"), ALL_INTERFACES)


def test_dev_on_the_network_without_auth_is_refused_too() -> None:
    with pytest.raises(FlowerRefused, match="CLAIMPAY_FLOWER_BASIC_AUTH"):
        flower_environment(settings_in("dev"), ALL_INTERFACES)


@pytest.mark.parametrize("value", ["nocolon", ":password", "ops:pw,broken"])
def test_malformed_credentials_are_refused(value: str) -> None:
    with pytest.raises(FlowerRefused, match="user:password"):
        flower_environment(make_settings(flower_basic_auth=value), "127.0.0.1")
