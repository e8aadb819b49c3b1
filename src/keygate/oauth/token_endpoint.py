"""Talking to a provider's token endpoint: one POST (form, or JSON where the catalog says) with
client authentication."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import OAuth2Method
from keygate.catalog.templates import fill
from keygate.catalog.values import capture_from
from keygate.clock import Clock, system_clock, utc_now
from keygate.oauth.client_auth import client_credentials
from keygate.oauth.protocol import TokenSet, lifetime_of, parse_token_response


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
    """POST a form (a JSON object where the method's `token_body` says json) with the app's
    client authentication; (status, JSON body or None).

    Raises TokenEndpointUnavailable for network failures, 5xx and 429 (all transient).
    """
    if not app.client_id:
        raise OAuthClientMissing(app.name)
    headers, fields = client_credentials(oauth.client_auth, app.client_id, app.client_secret)
    if oauth.token_body == "json":  # noqa: S105 - a body format
        content_type = "application/json"
        text = orjson.dumps(dict([*form, *fields])).decode()
    else:
        content_type = "application/x-www-form-urlencoded"
        text = urlencode([*form, *fields])
    headers += [("Content-Type", content_type), ("Accept", "application/json")]
    try:
        response = await (
            client.post(url)
            .headers(headers)
            .body_text(text)
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
    values: Mapping[str, str] | None = None,
    *,
    first: bool = False,
) -> TokenSet:
    """POST a grant to the token endpoint; raise TokenResponseError or TokenEndpointUnavailable
    (CaptureFailed when the answer lacks a value the catalog captures from it).

    `values` are the connection's parameters and captured values, which the token URL and the
    method's `token_params` are rendered with. The token's `expires_at` counts its `expires_in`
    (in the method's unit) from the answer's arrival by `clock`. The captures `from: token` are
    read from the answer: all required on the `first` exchange, updated when present after.
    """
    known = values or {}
    extra = [(name, fill(value, known)) for name, value in oauth.token_params.items()]
    status, body = await post_client_form(
        client, app.url(oauth.token_url, known), app, oauth, [*form, *extra], timeout_seconds
    )
    lifetime = lifetime_of(oauth.expires, oauth.expires_in_unit, oauth.default_expires_in)
    tokens = parse_token_response(status, body, utc_now(clock), lifetime)
    return replace(tokens, captured=capture_from(oauth, "token", tokens.body, required=first))
