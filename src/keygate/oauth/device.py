"""The OAuth 2.0 device authorization grant (RFC 8628): pure steps plus the two HTTP calls.

For people on a headless server: Keygate asks the provider for a user code, the person enters
it on any device with a browser, and Keygate polls the token endpoint until they decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import OAuth2Method
from keygate.oauth.protocol import TokenResponseError
from keygate.oauth.token_endpoint import post_client_form

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5
"""Seconds between polls when the provider names none (RFC 8628 §3.2)."""
SLOW_DOWN_STEP = 5
"""Seconds added to the interval on every `slow_down` (RFC 8628 §3.5)."""
MAX_BACKOFF = 60.0


class DeviceFlowUnsupported(Exception):
    """The app has no device authorization endpoint in the catalog or settings."""


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """A device authorization response (RFC 8628 §3.2); the device code stays out of reprs."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


def device_authorization_form(scopes: Sequence[str], separator: str) -> list[tuple[str, str]]:
    """The device authorization request body (RFC 8628 §3.1), client auth added separately."""
    return [("scope", separator.join(scopes))] if scopes else []


def device_token_form(device_code: str) -> list[tuple[str, str]]:
    """The token request that redeems a device code (RFC 8628 §3.4)."""
    return [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code)]


def parse_device_authorization(status: int, body: object) -> DeviceAuthorization:
    """A DeviceAuthorization from the provider's answer, or TokenResponseError (§3.2, §3.3)."""
    if not isinstance(body, dict):
        raise TokenResponseError("invalid_response", "the provider did not answer JSON", status)
    if status >= 400 or "error" in body:
        error, description = body.get("error"), body.get("error_description")
        raise TokenResponseError(
            error if isinstance(error, str) else "invalid_response",
            description if isinstance(description, str) else None,
            status,
        )
    device_code, user_code = body.get("device_code"), body.get("user_code")
    uri = body.get("verification_uri") or body.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise TokenResponseError(
            "invalid_response", "device_code, user_code or verification_uri missing", status
        )
    complete = body.get("verification_uri_complete")
    expires_in, interval = body.get("expires_in"), body.get("interval")
    return DeviceAuthorization(
        device_code=str(device_code),
        user_code=str(user_code),
        verification_uri=str(uri),
        verification_uri_complete=complete if isinstance(complete, str) and complete else None,
        expires_in=_positive_int(expires_in, 600),
        interval=_positive_int(interval, DEFAULT_INTERVAL),
    )


def _positive_int(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return int(value)
    return default


def next_interval(interval: float, error: str) -> float:
    """How long to wait before the next poll after a pending answer (RFC 8628 §3.5)."""
    return interval + SLOW_DOWN_STEP if error == "slow_down" else interval


def backoff_interval(interval: float) -> float:
    """The wait after a transient failure: doubled, capped (RFC 8628 §3.5 asks for backoff)."""
    return min(interval * 2, MAX_BACKOFF)


KEEP_POLLING = frozenset({"authorization_pending", "slow_down"})
"""Token-endpoint errors that mean "ask again later"; every other error ends the flow."""


async def request_device_authorization(
    client: Client, app: ConfiguredApp, oauth: OAuth2Method, scopes: Sequence[str]
) -> DeviceAuthorization:
    """POST to the device authorization endpoint with the app's client authentication."""
    if oauth.device_authorization_url is None:
        raise DeviceFlowUnsupported(app.name)
    status, body = await post_client_form(
        client,
        str(oauth.device_authorization_url),
        app,
        oauth,
        device_authorization_form(scopes, oauth.scope_separator),
    )
    return parse_device_authorization(status, body)
