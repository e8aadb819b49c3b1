"""`keygate mcp`: the MCP tools over stdio, forwarding every call to a Keygate over HTTP."""

from __future__ import annotations

import anyio
import httpx

from keygate.mcp_server.keygate_api import KeygateAPI
from keygate.mcp_server.tools import build_server


async def serve_stdio(
    url: str, api_key: str, *, default_connection: str | None, body_limit: int
) -> None:
    """Answer MCP on stdin/stdout until stdin closes, with `api_key` on every Keygate call."""
    timeout = httpx.Timeout(10.0, read=150.0)  # the gateway's own upstream read timeout first
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout) as client:
        api = KeygateAPI(client, f"Bearer {api_key}", url)
        server = build_server(
            lambda _ctx: api, body_limit=body_limit, default_connection=default_connection
        )
        await server.run_stdio_async()


def run_stdio(url: str, api_key: str, default_connection: str | None, body_limit: int) -> None:
    """The blocking form, for the command line."""
    anyio.run(
        lambda: serve_stdio(
            url, api_key, default_connection=default_connection, body_limit=body_limit
        )
    )
