"""Where the CLI's client commands (`call`, `connect`) find Keygate, and with which key.

The server reads its configuration through the one `Settings` object. The client commands do
not use it on purpose: building it imports pydantic and the catalog (~0.3 s), more than the
whole start-up budget of a `keygate call` that an agent runs many times. They need four
variables, read here once from the environment the command was given, and nothing else:

- `KEYGATE_URL`: Keygate's base URL (e.g. `https://keygate.example.com`), for a remote server;
- otherwise `KEYGATE_HOST` / `KEYGATE_PORT`, as for `keygate serve`, so a CLI started next to
  the server finds it (a wildcard host means loopback);
- `KEYGATE_API_KEY`: the caller's Keygate API key.

A `--url` option wins over all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keygate.local_url import local_url


class ClientConfigError(ValueError):
    """A client variable holds a value the CLI cannot use; the message names the variable."""


@dataclass(frozen=True)
class ClientConfig:
    """Keygate's base URL (no trailing slash), how it was chosen, and the caller's API key."""

    url: str
    api_key: str = field(repr=False)
    source: str
    """What chose the URL: "--url", "KEYGATE_URL" or "KEYGATE_HOST/KEYGATE_PORT"."""


def client_config(environ: Mapping[str, str], url: str | None = None) -> ClientConfig:
    """The client configuration from `environ` (the process environment at the edge)."""
    if url:
        chosen, source = url, "--url"
    elif environ.get("KEYGATE_URL", "").strip():
        chosen, source = environ["KEYGATE_URL"].strip(), "KEYGATE_URL"
    else:
        raw_port = environ.get("KEYGATE_PORT", "8080").strip() or "8080"
        if not raw_port.isdigit() or not 0 <= int(raw_port) <= 65535:
            raise ClientConfigError(f"KEYGATE_PORT: {raw_port!r} is not a port (0-65535)")
        host = environ.get("KEYGATE_HOST", "127.0.0.1").strip()
        chosen, source = local_url(host, int(raw_port)), "KEYGATE_HOST/KEYGATE_PORT"
    if not chosen.startswith(("http://", "https://")):
        raise ClientConfigError(f"{source}: {chosen!r} must start with http:// or https://")
    return ClientConfig(chosen.rstrip("/"), environ.get("KEYGATE_API_KEY", "").strip(), source)
