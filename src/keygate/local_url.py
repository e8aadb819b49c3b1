"""The URL a local client opens to reach a server bound to a host and port.

Shared by `Settings.served_url` (the server) and the CLI's client-side configuration, which
must not import the settings (pydantic) to stay fast.
"""

from __future__ import annotations

# A wildcard bind accepts loopback connections; a browser cannot open 0.0.0.0.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104 - a mapping


def local_url(host: str, port: int) -> str:
    """`http://host:port`, a wildcard host replaced by loopback and an IPv6 host bracketed."""
    host = _LOOPBACK.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
