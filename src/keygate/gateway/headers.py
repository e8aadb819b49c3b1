"""Which headers cross the gateway, in each direction, read in one pass per request."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from keygate.errors import InvalidHeader

log = logging.getLogger("keygate.gateway")

# RFC 9110 §7.6.1 hop-by-hop headers, plus the de-facto ones proxies drop too.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_HOP_BY_HOP_STR = frozenset(name.decode() for name in HOP_BY_HOP)
# `Connection` values that name no other header (the common case: nothing more to drop).
_PLAIN_CONNECTION = frozenset({"keep-alive", "close"})
# Read by Keygate and never forwarded.
_OWN = frozenset({b"host", b"authorization", b"maton-connection", b"keygate-connection"})


CallerHeaders = tuple[
    list[tuple[str, str]],
    set[bytes],
    bytes | None,
    bytes | None,
    bytes | None,
    bytes | None,
    bool,
    bool,
]
"""What the gateway needs from a caller's headers: (the headers to forward upstream, their
names, Authorization, the connection choice (Maton-Connection, else Keygate-Connection),
X-Request-Id, Content-Length, whether a Transfer-Encoding was sent, whether a value is not
UTF-8). A tuple, as building an object per request cost more than the pass itself.

Values are decoded as UTF-8, which the upstream client encodes them back to, so their bytes
reach the upstream unchanged; a value that is not UTF-8 is kept as surrogate escapes, which only
the exact client (`gateway/exact.py`) can send, and the last flag says so."""

# Control bytes no header value may hold (RFC 9110 §5.5); the pooled client refuses them too.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def read_caller_headers(headers: list[tuple[bytes, bytes]]) -> CallerHeaders:
    """One pass over the request headers (ASGI gives lower-case names), in local variables."""
    forward: list[tuple[str, str]] = []
    names: set[bytes] = set()
    authorization = maton = keygate = request_id = content_length = None
    chunked = unusual = False
    listed: set[bytes] = set()
    for name, value in headers:
        if name in _OWN:
            if name == b"authorization":
                authorization = value
            elif name == b"maton-connection":
                maton = maton or value
            elif name == b"keygate-connection":
                keygate = keygate or value
            continue
        if name in HOP_BY_HOP:
            if name == b"transfer-encoding":
                chunked = True
            elif name == b"connection":
                listed |= _tokens(value)
            continue
        if name[:8] == b"keygate-":
            continue
        if name == b"content-length":
            content_length = value
        elif name == b"x-request-id":
            request_id = value
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = value.decode("utf-8", "surrogateescape")
            unusual = True
        forward.append((name.decode("latin-1"), text))
        names.add(name)
    if listed:
        # Headers the caller named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
        forward = [(n, v) for n, v in forward if n.encode("latin-1") not in listed]
        names -= listed
    choice = maton if maton is not None else keygate
    return forward, names, authorization, choice, request_id, content_length, chunked, unusual


def refuse_control_bytes(headers: list[tuple[str, str]]) -> None:
    """Raise `InvalidHeader` if a caller's header value holds a control byte (tab aside).

    Called off the hot path only: HTTP/1.1 servers such as granian refuse those bytes before the
    gateway sees them, others let some through."""
    for name, value in headers:
        if _CONTROL.search(value):
            raise InvalidHeader(
                f"The value of the {name} header holds a control character; "
                "header values may hold tabs but no other control characters."
            )


def downstream_response_headers(
    items: Iterable[tuple[str, str]], connection: str | None
) -> list[tuple[bytes, bytes]]:
    """Upstream response headers to pass back to the caller: hop-by-hop ones removed, and those
    the upstream's `Connection` header (`connection`, read separately) names.

    The client hands over lower-case names, as HTTP/2 and hyper normalise them.
    """
    out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in items if k not in _HOP_BY_HOP_STR]
    if connection is None or connection.lower() in _PLAIN_CONNECTION:
        return out
    listed = _tokens(connection.encode("latin-1"))
    return [(k, v) for k, v in out if k not in listed]


def readable_response_headers(headers: Any, request_id: bytes) -> list[tuple[bytes, bytes]]:
    """The pooled client's response headers when some value is not visible ASCII.

    The client hands header values over as `str` only, and cannot for such a value: those headers
    are dropped, with a warning naming them (never their values), rather than failing the whole
    response. The exact client (`gateway/exact.py`) passes them on unchanged.
    """
    items: list[tuple[str, str]] = []
    for name in dict.fromkeys(headers.keys()):
        try:
            items.extend((name, value) for value in headers.getall(name))
        except ValueError:
            log.warning(
                "gateway request %s: upstream response header %s dropped: its value is not "
                "visible ASCII",
                request_id.decode(),
                name,
            )
    connection = next((v for k, v in items if k == "connection"), None)
    return downstream_response_headers(items, connection)
