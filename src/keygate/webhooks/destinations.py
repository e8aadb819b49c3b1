"""Which URLs webhook deliveries may go to: http or https, no credentials in the URL, and —
when the operator sets `KEYGATE_WEBHOOK_ALLOWED_DESTINATIONS` — a host on the list, or an
address inside one of its networks (a name is resolved and every address must be inside).

Checked when an endpoint is registered and again before each delivery (the list may have
changed). A name admitted by its addresses is resolved once per delivery, and the delivery
connects to an address that check admitted (`Destination`): a DNS answer that changes between
the check and the connection (rebinding) cannot send it elsewhere. The request still names the
host (`Host`, and the TLS server name its certificate is verified against).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

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


Resolver = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True)
class Destination:
    """Where one delivery goes: `url` to connect to, with `headers` and httpx `extensions`."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)

    @property
    def pinned(self) -> bool:
        """Whether `url` names an address the check resolved (not the endpoint's host)."""
        return bool(self.headers)


class DestinationPolicy:
    """The operator's allow-list of webhook destinations (empty: any http(s) URL)."""

    def __init__(self, allowed: list[str], resolve: Resolver | None = None) -> None:
        self.resolve: Resolver = resolve or _addresses
        """Name → addresses (the system resolver; a test stands in for DNS with its own)."""
        self._hosts: set[str] = set()
        self._networks: list[Network] = []
        for entry in allowed:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._hosts.add(entry.lower().rstrip("."))

    async def check(self, url: str) -> None:
        """Raise BadRequest (saying why) unless deliveries may go to `url`."""
        await self.destination(url)

    async def destination(self, url: str) -> Destination:
        """Where a delivery to `url` connects; BadRequest (saying why) if it may not."""
        if len(url) > 2048:
            raise BadRequest("url may be at most 2048 characters.")
        if not _URL.fullmatch(url):
            raise BadRequest(
                "url must be an http:// or https:// URL: a host name or IPv4 address, an "
                "optional port, path and query; no credentials, no fragment."
            )
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not self._hosts and not self._networks:
            return Destination(url)
        if host.lower().rstrip(".") in self._hosts:
            return Destination(url)
        if _is_address(host):
            if self._networks and self._inside(host):
                return Destination(url)
        else:
            addresses = await self.resolve(host) if self._networks else []
            if addresses and all(self._inside(a) for a in addresses):
                return _pinned(parts, host, addresses)
        raise BadRequest(
            f"Webhooks may not be delivered to {host}: it is not in this deployment's "
            "KEYGATE_WEBHOOK_ALLOWED_DESTINATIONS."
        )

    def _inside(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip in network for network in self._networks)


def _pinned(parts: SplitResult, host: str, addresses: list[str]) -> Destination:
    """The URL with its host replaced by one of `addresses` (an IPv4 one if any: one address is
    tried, not each in turn, and most receivers listen on IPv4), keeping the name for the
    request's Host and TLS server name."""
    address = sorted(addresses, key=lambda a: ":" in a)[0].split("%", 1)[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    named = f"{host}:{parts.port}" if parts.port else host
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Destination(urlunsplit(parts._replace(netloc=netloc)), {"host": named}, extensions)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _addresses(host: str) -> list[str]:
    """The addresses the name `host` stands for; none if it does not resolve."""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(info[4][0]) for info in found]
