"""Talking to a provider's token endpoint: one form POST with client authentication."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import OAuth2Method
from keygate.clock import Clock, system_clock, utc_now
from keygate.oauth.client_auth import client_credentials
from keygate.oauth.protocol import TokenSet, parse_token_response


class TokenEndpointUnavailable(Exception):
    """The token endpoint could not be reached or answered 5xx: a transient failure."""


class OAuthClientMissing(Exception):
    """The operator has not configured an OAuth client for the app."""


async def post_client_form(
    client: Client,
    url: str,
    app: ConfiguredApp,
    oauth: OAuth2Method,
    form: list[tuple[str, str]],
    timeout_seconds: float = 30.0,
) -> tuple[int, Any]:
    """POST a form with the app's client authentication; (status, JSON body or None).

    Raises TokenEndpointUnavailable for network failures, 5xx and 429 (all transient).
    """
    if not app.client_id:
        raise OAuthClientMissing(app.name)
    headers, fields = client_credentials(oauth.client_auth, app.client_id, app.client_secret)
    headers += [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
    ]
    try:
        response = await (
            client.post(url)
            .headers(headers)
            .body_text(urlencode([*form, *fields]))
            .timeout(timedelta(seconds=timeout_seconds))
            .build()
            .send()
        )
        raw = bytes(await response.bytes())
    except Exception as exc:
        raise TokenEndpointUnavailable(type(exc).__name__) from exc
    if response.status >= 500 or response.status == 429:
        raise TokenEndpointUnavailable(f"{url} answered {response.status}")
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    return response.status, body


async def request_tokens(
    client: Client,
    app: ConfiguredApp,
    oauth: OAuth2Method,
    form: list[tuple[str, str]],
    timeout_seconds: float = 30.0,
    clock: Clock = system_clock,
) -> TokenSet:
    """POST a grant to the token endpoint; raise TokenResponseError or TokenEndpointUnavailable.

    The token's `expires_at` counts its `expires_in` from the answer's arrival by `clock`.
    """
    status, body = await post_client_form(
        client, str(oauth.token_url), app, oauth, form, timeout_seconds
    )
    return parse_token_response(status, body, utc_now(clock))
