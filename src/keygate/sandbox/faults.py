"""Fault switches for the token endpoint, and the ASGI wrapper that can drop a connection.

"down" closes the TCP connection without an answer when the sandbox runs under uvicorn (the
server's `send` callable exposes its asyncio transport). Under servers that hide the transport
(for example `httpx.ASGITransport` in-process) it answers 503 `temporarily_unavailable` instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DROP_MARKER = b"x-sandbox-drop-connection"
"""Response header a handler sets to ask `ConnectionDropper` to hang up instead."""


class TokenEndpointMode(StrEnum):
    """How the token (and device authorize) endpoint behaves."""

    OK = "ok"
    ERROR500 = "error500"
    SLOW = "slow"
    DOWN = "down"


@dataclass
class FaultSwitches:
    """The faults currently injected; `token_delay` is used in `slow` mode."""

    token_endpoint: TokenEndpointMode = TokenEndpointMode.OK
    token_delay: float = 2.0

    def as_dict(self) -> dict[str, object]:
        """Return the switches as JSON-ready data."""
        return {"token_endpoint": self.token_endpoint.value, "token_delay": self.token_delay}


def _server_transport(send: Send) -> asyncio.BaseTransport | None:
    # uvicorn's send is a bound method of its request cycle, which holds the transport.
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


class ConnectionDropper:
    """ASGI wrapper: a response carrying `DROP_MARKER` becomes a closed connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, swallowing a marked response and closing the transport instead."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dropped = False

        async def guarded_send(message: Message) -> None:
            nonlocal dropped
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                if DROP_MARKER in names:
                    transport = _server_transport(send)
                    if transport is not None:
                        dropped = True
                        transport.close()
                        return
                    message = _unavailable_start(message)
            if dropped:
                return
            await send(message)

        await self.app(scope, receive, guarded_send)
        if dropped:
            # Let connection_lost run so the server marks the cycle disconnected, not a 500.
            for _ in range(3):
                await asyncio.sleep(0)


def _unavailable_start(message: Message) -> Message:
    headers = [(k, v) for k, v in message.get("headers", []) if k != DROP_MARKER]
    return {**message, "status": 503, "headers": headers}


class SandboxStarlette(Starlette):
    """A Starlette app whose outermost layer is `ConnectionDropper`.

    The dropper must see the server's own `send` (Starlette's middleware wraps it), so it runs
    before Starlette's stack rather than as a middleware inside it.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request, letting marked responses hang up the connection."""
        await ConnectionDropper(super().__call__)(scope, receive, send)
