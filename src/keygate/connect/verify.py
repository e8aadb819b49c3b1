"""Checking a pasted secret against the provider before a connection becomes ACTIVE."""

from __future__ import annotations

from datetime import timedelta

from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import ApiKeyMethod
from keygate.secret import Secret


class VerificationFailed(Exception):
    """The provider refused the secret, or could not be asked; the message is for the person."""


async def verify_secret(
    client: Client, app: ConfiguredApp, method: ApiKeyMethod, values: dict[str, Secret]
) -> None:
    """Make the catalog's cheap authenticated call; raise VerificationFailed unless it is 2xx."""
    if method.verify is None:
        return
    plain = {name: secret.reveal() for name, secret in values.items()}
    headers = [
        *method.verify.headers.items(),
        (method.inject.header, method.inject.template.format_map(plain)),
    ]
    url = app.base_url + method.verify.path
    try:
        response = await (
            client.request(method.verify.method, url)
            .headers(headers)
            .timeout(timedelta(seconds=15))
            .build()
            .send()
        )
    except Exception as exc:
        raise VerificationFailed(
            f"Keygate could not reach {app.spec.display_name} to check the key. Try again."
        ) from exc
    if response.status in (401, 403):
        raise VerificationFailed(
            f"{app.spec.display_name} rejected this key ({response.status}). "
            "Check that you copied the whole key and that it is still active."
        )
    if response.status >= 300:
        raise VerificationFailed(
            f"{app.spec.display_name} answered {response.status} when Keygate checked the key. "
            "Try again later."
        )
