"""`/mcp`: the MCP tools over streamable HTTP, stateless, for callers holding a Keygate key.

Stateless (no session, JSON answers): every request carries its key and is served whole by
whichever worker or replica receives it. Before the MCP SDK sees a request, it must be
addressed to this Keygate (Host and Origin as `KEYGATE_PUBLIC_URL` says: DNS-rebinding
protection) and carry a valid key, else it gets Keygate's JSON error (401 `invalid_api_key`).

The tools reach the control plane and gateway in process (`InProcessTransport`) with the very
`Authorization` value the request came with: each of their calls is authenticated and confined
to the key's workspace by the same code as any other request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings

from keygate.errors import InvalidHeader, KeygateError, MethodNotAllowedError, render_error
from keygate.mcp_server.in_process import ASGIApp, InProcessTransport
from keygate.mcp_server.keygate_api import KeygateAPI
from keygate.mcp_server.tools import build_server
from keygate.store.reads import CachedReads

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def addressed_names(public_url: str) -> tuple[frozenset[str], frozenset[str]]:
    """(Host values, Origin values) of requests addressed to this Keygate.

    The public URL's own; with and without a default port; and, when it is a loopback address,
    the other loopback names on the same port (a local client may say localhost or 127.0.0.1).
    """
    parts = urlsplit(public_url)
    scheme = parts.scheme
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or _DEFAULT_PORTS.get(scheme, 80)
    names = _LOOPBACK if host in _LOOPBACK else (host,)
    hosts = {f"{name}:{port}" for name in names}
    if port == _DEFAULT_PORTS.get(scheme):
        hosts |= set(names)
    origins = {f"{scheme}://{h}" for h in hosts}
    return frozenset(hosts), frozenset(origins)


async def _respond(error: KeygateError, send: Any) -> None:
    status, headers, body = render_error(error)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class McpEndpoint:
    """The ASGI app served at `/mcp` (`running()` must be entered first, at start-up)."""

    def __init__(
        self, *, reads: CachedReads, public_url: str, keygate: ASGIApp, body_limit: int
    ) -> None:
        self._reads = reads
        self._public_url = public_url
        self._hosts, self._origins = addressed_names(public_url)
        origin = urlsplit(public_url)
        self._client = httpx.AsyncClient(
            transport=InProcessTransport(keygate),
            base_url=f"{origin.scheme}://{origin.netloc}",
            # The gateway's own upstream timeouts bound every call made in process.
            timeout=None,  # noqa: S113
        )
        self._server = build_server(self._api_of, body_limit=body_limit)
        # The checks above are Keygate's (with its JSON errors); the SDK's would repeat them.
        self._server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._manager = self._server.session_manager

    def _api_of(self, ctx: Context) -> KeygateAPI:
        headers = ctx.headers or {}
        # Checked by __call__ before the SDK ran, and checked again by every call it makes.
        return KeygateAPI(self._client, headers.get("authorization", ""), self._public_url)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve while inside: the SDK's task group for requests, then the client closed."""
        try:
            async with self._manager.run():
                yield
        finally:
            await self._client.aclose()

    def _refusal(self, scope: dict[str, Any]) -> KeygateError | None:
        host = origin = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1").lower()
            elif name == b"origin":
                origin = value.decode("latin-1").lower()
        if host not in self._hosts:
            return InvalidHeader(
                f"The MCP endpoint answers requests addressed to {self._public_url} only "
                "(KEYGATE_PUBLIC_URL); this one's Host header names another host."
            )
        if origin is not None and origin not in self._origins:
            return InvalidHeader(
                f"The MCP endpoint refuses requests from web pages of other origins than "
                f"{self._public_url}."
            )
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        refusal = self._refusal(scope)
        if refusal is not None:
            await _respond(refusal, send)
            return
        if scope["method"] != "POST":
            # Stateless: no stream a GET could open (the SDK would hold it open, empty, for
            # ever) and no session a DELETE could end. The transport allows a 405 for both.
            await _respond(
                MethodNotAllowedError("POST", "The MCP endpoint takes JSON-RPC messages by POST."),
                send,
            )
            return
        authorization = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
        )
        try:
            await self._reads.api_key(authorization)
        except KeygateError as error:  # 401 invalid_api_key, or 503 when the store is down
            await _respond(error, send)
            return
        await self._manager.handle_request(scope, receive, send)
