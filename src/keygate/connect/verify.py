"""Checking a pasted secret against the provider before a connection becomes ACTIVE."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pyreqwest.client import Client

from keygate.catalog.auth import CredentialAuth
from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import ApiKeyMethod
from keygate.catalog.templates import fill


class VerificationFailed(Exception):
    """The provider refused the secret, or could not be asked; the message is for the person."""


async def verify_secret(
    client: Client,
    app: ConfiguredApp,
    method: ApiKeyMethod,
    auth: CredentialAuth,
    params: Mapping[str, str],
) -> None:
    """Make the catalog's cheap authenticated call with the secret applied as the gateway applies
    it, at the URL the connection's `params` make; raise VerificationFailed unless it is 2xx."""
    if method.verify is None:
        return
    verify = [(name, fill(value, params)) for name, value in method.verify.headers.items()]
    # The app's default headers too (an API version it requires), as the gateway adds them.
    named = {name.lower() for name, _ in verify}
    defaults = [(n, v) for key, n, v in app.connection_headers(params) if key.decode() not in named]
    headers = [*verify, *defaults, *auth.headers]
    url = auth.url(app.connection_base_url(method, params) + method.verify.path)
    try:
        response = await (
            client.request(method.verify.method, url)
            .headers(headers)
            .timeout(timedelta(seconds=15))
            .build()
            .send()
        )
    except Exception as exc:  # any failure to ask is the person's 'try again'
        # Not chained: the client's message quotes the URL, which may carry the secret.
        raise VerificationFailed(
            f"Keygate could not reach {app.spec.display_name} to check the key "
            f"({type(exc).__name__}). Try again."
        ) from None
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
