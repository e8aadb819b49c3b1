"""Revoking a connection's tokens at the provider (RFC 7009), best effort."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import Method
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
    headers, fields = client_credentials(oauth.client_auth, app.client_id, app.client_secret)
    body = urlencode([("token", token), ("token_type_hint", hint), *fields])
    headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    try:
        response = await (
            client.post(str(oauth.revoke_url))
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
