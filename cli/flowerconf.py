"""How `claimpay flower` runs Flower: authentication from settings, refusal when unsafe.

The basic-auth credentials reach Flower through its own `FLOWER_BASIC_AUTH` environment
variable, set inside the `claimpay flower` process, rather than through `--basic-auth` on
the command line, where `ps` would show the password to every user of the machine.
"""

from __future__ import annotations

import ipaddress

from claimpay.errors import ClaimpayError
from claimpay.settings import Settings

LOOPBACK_NAMES = ("localhost",)


class FlowerRefused(ClaimpayError):
    """Raised when Flower would serve workers and tasks to the network without a password."""


def is_loopback(address: str) -> bool:
    """True for an address only this machine can reach."""
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def flower_environment(settings: Settings, address: str) -> dict[str, str]:
    """The `FLOWER_*` variables for Flower bound to `address`.

    With `flower_basic_auth`: basic auth on the UI and the API. Without, on loopback: the
    API is open to the local user (`FLOWER_UNAUTHENTICATED_API`). Without, elsewhere:
    refused, in every environment: workers and tasks are never served to the network
    without a password."""
    secret = settings.flower_basic_auth.get_secret_value() if settings.flower_basic_auth else ""
    if secret:
        if any(":" not in pair or pair.startswith(":") for pair in secret.split(",")):
            raise FlowerRefused("CLAIMPAY_FLOWER_BASIC_AUTH must be user:password[,user:password]")
        return {"FLOWER_BASIC_AUTH": secret}
    if is_loopback(address):
        return {"FLOWER_UNAUTHENTICATED_API": "true"}
    raise FlowerRefused(
        f"refusing to serve Flower on {address} without authentication: set "
        "CLAIMPAY_FLOWER_BASIC_AUTH=user:password, or bind to 127.0.0.1"
    )
