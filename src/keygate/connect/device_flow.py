"""Connecting through the device flow: show a user code, poll until the person decides.

The pure RFC 8628 steps are in `keygate.oauth.device`; this module drives them for one
connection and records the outcome exactly as the browser callback does (tokens encrypted and
ACTIVE, or FAILED with the provider's reason).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.oauth.device import (
    KEEP_POLLING,
    DeviceAuthorization,
    DeviceFlowUnsupported,
    backoff_interval,
    device_token_form,
    next_interval,
    request_device_authorization,
)
from keygate.oauth.protocol import TokenResponseError
from keygate.oauth.token_endpoint import TokenEndpointUnavailable, request_tokens
from keygate.store.connections import ConnectionRepository
from keygate.store.records import ConnectionRecord, Status

log = logging.getLogger("keygate.connect")

Sleep = Callable[[float], Awaitable[None]]


class DeviceFlowFailed(Exception):
    """The device flow ended without tokens; the message is for the person at the terminal."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def authorize_device(
    connection: ConnectionRecord,
    app: ConfiguredApp | None,
    show: Callable[[DeviceAuthorization], None],
    *,
    connections: ConnectionRepository,
    client: Client,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ConnectionRecord:
    """Run the device flow for a connection; return it ACTIVE or raise DeviceFlowFailed.

    `app` is the connection's configured app (None: it has none, and the flow is unsupported);
    `client` talks to the provider; `connections` records the outcome.
    """
    oauth = app.oauth() if app else None
    if app is None or oauth is None:
        raise DeviceFlowUnsupported(connection.app)
    name = app.spec.display_name
    try:
        grant = await request_device_authorization(
            client, app, oauth, connection.scopes or oauth.scopes
        )
    except TokenEndpointUnavailable as exc:
        raise DeviceFlowFailed(
            "provider_unavailable", f"{name} is not answering ({exc}). Try again later."
        ) from exc
    except TokenResponseError as exc:
        raise DeviceFlowFailed(
            f"oauth_{exc.error}", f"{name} refused to start: {exc.description or exc.error}"
        ) from exc
    show(grant)
    deadline = clock() + grant.expires_in
    interval: float = grant.interval
    form = device_token_form(grant.device_code)
    while True:
        await sleep(interval)
        if clock() >= deadline:
            return await _fail(
                connections, connection, "expired_token", f"The {name} code expired."
            )
        try:
            tokens = await request_tokens(client, app, oauth, form, values=connection.params)
        except TokenEndpointUnavailable as exc:
            log.warning("device flow for %s: token endpoint unavailable: %s", connection.id, exc)
            interval = backoff_interval(interval)
            continue
        except TokenResponseError as exc:
            if exc.error in KEEP_POLLING:
                interval = next_interval(interval, exc.error)
                continue
            reason = exc.description or exc.error
            return await _fail(connections, connection, exc.error, f"{name} said: {reason}")
        active = await connections.activate(
            connection.id, tokens.stored_values(), tokens.expires_at
        )
        if active is None:
            raise DeviceFlowFailed("connection_not_found", "The connection was deleted meanwhile.")
        log.info("connection %s (%s) authorized with the device flow", connection.id, app.name)
        return active


async def _fail(
    connections: ConnectionRepository, connection: ConnectionRecord, error: str, message: str
) -> ConnectionRecord:
    await connections.set_status(
        connection.id, Status.FAILED, f"oauth_{error}"[:64], message[:1000]
    )
    raise DeviceFlowFailed(f"oauth_{error}", message)
