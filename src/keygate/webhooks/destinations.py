"""Which URLs webhook deliveries may go to: http or https, no credentials in the URL, and —
when the operator sets `KEYGATE_WEBHOOK_ALLOWED_DESTINATIONS` — a host on the list, or an
address inside one of its networks (a name is resolved and every address must be inside).

Checked when an endpoint is registered and again before each delivery (the list may have
changed). The check and the connection resolve the name separately, so a name whose DNS answer
changes in between (rebinding) is not caught: list networks of addresses you control.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from keygate.errors import BadRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_PATH_CHARS = "[A-Za-z0-9._~!$&'()*+,;=:@%/-]"
URL_PATTERN = (
    "^https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
    f"(:{_PORT})?(/{_PATH_CHARS}*)?([?]({_PATH_CHARS}|[?])*)?$"
)
"""The webhook URLs Keygate takes: http(s), a host name or IPv4 address (no credentials, no
IPv6 literal), an optional port, path and query, no fragment."""
_URL = re.compile(URL_PATTERN)


class DestinationPolicy:
    """The operator's allow-list of webhook destinations (empty: any http(s) URL)."""

    def __init__(self, allowed: list[str]) -> None:
        self._hosts: set[str] = set()
        self._networks: list[Network] = []
        for entry in allowed:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower().rstrip("."))

    async def check(self, url: str) -> None:
        """Raise BadRequest (saying why) unless deliveries may go to `url`."""
        if len(url) > 2048:
            raise BadRequest("url may be at most 2048 characters.")
        if not _URL.fullmatch(url):
            raise BadRequest(
                "url must be an http:// or https:// URL: a host name or IPv4 address, an "
                "optional port, path and query; no credentials, no fragment."
            )
        host = urlsplit(url).hostname or ""
        if not self._hosts and not self._networks:
            return
        if host.lower().rstrip(".") in self._hosts:
            return
        addresses = await _addresses(host) if self._networks else []
        if addresses and all(self._inside(a) for a in addresses):
            return
        raise BadRequest(
            f"Webhooks may not be delivered to {host}: it is not in this deployment's "
            "KEYGATE_WEBHOOK_ALLOWED_DESTINATIONS."
        )

    def _inside(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip in network for network in self._networks)


async def _addresses(host: str) -> list[str]:
    """The addresses `host` stands for (itself, if it is one); none if it does not resolve."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in found]
