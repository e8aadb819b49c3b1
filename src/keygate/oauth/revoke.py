"""Revoking a connection's tokens at the provider (RFC 7009), best effort, at the revoke URL
the connection's parameters and captured values make, in the method's token body format."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

import orjson
from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import Method
from keygate.catalog.values import substitution_values
from keygate.oauth.client_auth import client_credentials
from keygate.store.connections import ConnectionRepository
from keygate.store.records import ConnectionRecord

log = logging.getLogger("keygate.oauth")


async def revoke_connection(
    connection: ConnectionRecord,
    app: ConfiguredApp | None,
    *,
    connections: ConnectionRepository,
    client: Client,
) -> bool:
    """Ask the provider to revoke the connection's refresh (else access) token; never raises.

    `app` is the connection's configured app (None if the catalog no longer has it);
    `connections` holds its credential; `client` sends the revocation.
    """
    if connection.method != Method.OAUTH2.value:
        return False
    oauth = app.oauth() if app else None
    if app is None or oauth is None or oauth.revoke_url is None or not app.client_id:
        return False
    try:
        credential = await connections.credentials(connection.id)
    except Exception:
        log.warning("revoke %s: stored credential unreadable", connection.id)
        return False
    if credential is None:
        return False
    token, hint = credential.get("refresh_token"), "refresh_token"
    if token is None:
        token, hint = credential.get("access_token"), "access_token"
    if token is None:
        return False
    plain = {name: secret.reveal() for name, secret in credential.values.items()}
    try:
        url = app.url(oauth.revoke_url, substitution_values(oauth, connection.params, plain))
    except (KeyError, ValueError):
        log.warning("revoke %s: the revoke URL names a value the connection lacks", connection.id)
        return False
    headers, fields = client_credentials(oauth.client_auth, app.client_id, app.client_secret)
    pairs = [("token", token), ("token_type_hint", hint), *fields]
    if oauth.token_body == "json":  # noqa: S105 - a body format
        body = orjson.dumps(dict(pairs)).decode()
        headers.append(("Content-Type", "application/json"))
    else:
        body = urlencode(pairs)
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    try:
        response = await (
            client.post(url)
            .headers(headers)
            .body_text(body)
            .timeout(timedelta(seconds=10))
            .build()
            .send()
        )
    except Exception as exc:  # best effort: the connection is deleted either way
        log.warning("revoke %s at %s failed: %s", connection.id, app.name, type(exc).__name__)
        return False
    if response.status >= 400:
        log.warning("revoke %s at %s answered %d", connection.id, app.name, response.status)
        return False
    log.info("revoked the tokens of connection %s at %s", connection.id, app.name)
    return True
