"""Which headers cross the gateway, in each direction, read in one pass per request."""

from __future__ import annotations

from collections.abc import Iterable

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
    list[tuple[str, str]], set[bytes], bytes | None, bytes | None, bytes | None, bytes | None, bool
]
"""What the gateway needs from a caller's headers: (the headers to forward upstream, their
names, Authorization, the connection choice (Maton-Connection, else Keygate-Connection),
X-Request-Id, Content-Length, whether a Transfer-Encoding was sent). A tuple, as building an
object per request cost more than the pass itself."""


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def read_caller_headers(headers: list[tuple[bytes, bytes]]) -> CallerHeaders:
    """One pass over the request headers (ASGI gives lower-case names), in local variables."""
    forward: list[tuple[str, str]] = []
    names: set[bytes] = set()
    authorization = maton = keygate = request_id = content_length = None
    chunked = False
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
        forward.append((name.decode("latin-1"), value.decode("latin-1")))
        names.add(name)
    if listed:
        # Headers the caller named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
        forward = [(n, v) for n, v in forward if n.encode("latin-1") not in listed]
        names -= listed
    choice = maton if maton is not None else keygate
    return forward, names, authorization, choice, request_id, content_length, chunked


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
