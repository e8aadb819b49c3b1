"""Security headers on every response of the control app: pages, documents and JSON.

Every response gets `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` (a
connect link carries a session token in its query; no page may hand it to another origin). A
response without its own Content-Security-Policy gets one that allows nothing, so an HTML page
added later is locked down until it says what it needs; pages that load anything set their own
with `content_security_policy`. Gateway responses are the upstream's and are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DENY_ALL = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def content_security_policy(
    *,
    scripts: Iterable[str] = (),
    styles: Iterable[str] = ("'self'",),
    images: Iterable[str] = ("'self'",),
    connect: Iterable[str] = (),
    forms: Iterable[str] = (),
) -> str:
    """A policy that allows only the sources named (nothing by default) and no framing."""
    directives = [("default-src", ["'none'"])]
    for name, sources in (
        ("script-src", scripts),
        ("style-src", styles),
        ("img-src", images),
        ("connect-src", connect),
        ("form-action", forms),
    ):
        allowed = list(sources)
        directives.append((name, allowed or ["'none'"]))
    directives += [("frame-ancestors", ["'none'"]), ("base-uri", ["'none'"])]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives)


class SecurityHeaders:
    """ASGI middleware adding the headers above to each response start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", ()))
                names = {bytes(name).lower() for name, _ in headers}
                headers += [(k, v) for k, v in _ALWAYS if k not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", _DENY_ALL.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)
