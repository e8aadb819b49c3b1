"""Talking to a provider's token endpoint: one form POST with client authentication."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import orjson
from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import OAuth2Method
from keygate.oauth.client_auth import client_credentials
from keygate.oauth.protocol import TokenSet, parse_token_response
from keygate.store.schema import utcnow


class TokenEndpointUnavailable(Exception):
    """The token endpoint could not be reached or answered 5xx: a transient failure."""


class OAuthClientMissing(Exception):
    """The operator has not configured an OAuth client for the app."""


async def request_tokens(
    client: Client,
    app: ConfiguredApp,
    oauth: OAuth2Method,
    form: list[tuple[str, str]],
    timeout_seconds: float = 30.0,
) -> TokenSet:
    """POST a grant to the token endpoint; raise TokenResponseError or TokenEndpointUnavailable."""
    if not app.client_id:
        raise OAuthClientMissing(app.name)
    headers, fields = client_credentials(oauth.client_auth, app.client_id, app.client_secret)
    headers += [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
    ]
    try:
        response = await (
            client.post(str(oauth.token_url))
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
        raise TokenEndpointUnavailable(f"token endpoint answered {response.status}")
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    return parse_token_response(response.status, body, utcnow())
