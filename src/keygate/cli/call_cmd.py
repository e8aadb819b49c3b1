"""`keygate call`: one request through a running gateway, printing the upstream's answer."""

from __future__ import annotations

import sys
from typing import Annotated

import httpx
import typer

from keygate.cli.context import load_settings
from keygate.cli.output import fail


def call(
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    method: Annotated[str, typer.Argument(metavar="METHOD")],
    path: Annotated[str, typer.Argument(metavar="PATH", help="Native path, e.g. /api/profiles")],
    data: Annotated[str | None, typer.Option(help="Request body ('@file' reads a file).")] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", help="'Name: value', repeatable.")
    ] = None,
    connection: Annotated[str | None, typer.Option(help="Connection id to use.")] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Keygate base URL (default: where 'keygate serve' listens)."),
    ] = None,
    include: Annotated[
        bool, typer.Option("--include", "-i", help="Print status and headers.")
    ] = False,
) -> None:
    """Send METHOD /APP/PATH through the gateway with KEYGATE_API_KEY and print the answer."""
    settings = load_settings()
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        fail("set KEYGATE_API_KEY to a Keygate API key (keygate keys create prints one)")
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    for item in header or []:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            fail(f"--header must look like 'Name: value', got {item!r}")
        headers[name.strip()] = value.strip()
    if connection:
        headers["Maton-Connection"] = connection
    body: bytes | None = None
    if data is not None:
        if data.startswith("@"):
            with open(data[1:], "rb") as handle:
                body = handle.read()
        else:
            body = data.encode()
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    # The CLI looks where the server listens: both read KEYGATE_HOST and KEYGATE_PORT.
    base = (url or settings.served_url).rstrip("/")
    target = f"{base}/{app_name}/{path.lstrip('/')}"
    try:
        response = httpx.request(method.upper(), target, headers=headers, content=body, timeout=120)
    except httpx.HTTPError as exc:
        how = (
            "check --url"
            if url
            else "is 'keygate serve' running? Set KEYGATE_PORT (and KEYGATE_HOST) as for the "
            "server, or pass --url"
        )
        fail(f"could not reach Keygate at {base} ({type(exc).__name__}); {how}")
    if include:
        typer.echo(f"HTTP {response.status_code}", err=True)
        for name, value in response.headers.items():
            typer.echo(f"{name}: {value}", err=True)
    sys.stdout.buffer.write(response.content)
    if response.content and not response.content.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    if response.status_code >= 400:
        raise typer.Exit(1)
