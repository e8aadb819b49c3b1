"""`keygate mcp`: an MCP server on stdio that forwards to a Keygate over HTTP.

An MCP client (a desktop agent) starts it as a subprocess; it reads KEYGATE_API_KEY and calls
the Keygate at --url with it. The MCP SDK is imported only when the command runs.
"""

from __future__ import annotations

from typing import Annotated

import typer


def mcp(
    url: Annotated[
        str | None,
        typer.Option(help="Keygate base URL (default: where 'keygate serve' listens)."),
    ] = None,
    connection: Annotated[
        str | None,
        typer.Option(help="Connection id a call of its app uses when it names none."),
    ] = None,
) -> None:
    """Speak MCP on stdin/stdout, with KEYGATE_API_KEY, against the Keygate at --url."""
    from keygate.cli.context import load_settings
    from keygate.cli.output import fail

    settings = load_settings()
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        fail("set KEYGATE_API_KEY to a Keygate API key (keygate keys create prints one)")
    from keygate.log_format import configure_logging
    from keygate.mcp_server.stdio import run_stdio

    # stdout carries MCP; every log line goes to stderr, as KEYGATE_LOG_LEVEL/FORMAT say.
    configure_logging(settings.log_format, settings.log_level)
    base = (url or settings.served_url).rstrip("/")
    run_stdio(base, settings.api_key.get_secret_value().strip(), connection, settings.mcp_max_body)
