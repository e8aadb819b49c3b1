"""Revoking a connection's tokens at the provider (RFC 7009), best effort."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

from keygate.catalog.model import Method
from keygate.oauth.client_auth import client_credentials
from keygate.runtime import Runtime
from keygate.store.records import ConnectionRecord

log = logging.getLogger("keygate.oauth")


async def revoke_connection(runtime: Runtime, connection: ConnectionRecord) -> bool:
    """Ask the provider to revoke the connection's refresh (else access) token; never raises."""
    if connection.method != Method.OAUTH2.value:
        return False
    app = runtime.apps.get(connection.app)
    oauth = app.oauth() if app else None
    if app is None or oauth is None or oauth.revoke_url is None or not app.client_id:
        return False
    try:
        credential = await runtime.connections.credentials(connection.id)
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
            runtime.upstream.post(str(oauth.revoke_url))
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
