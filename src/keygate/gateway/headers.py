"""Which headers cross the gateway, in each direction, read in one pass per request."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

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


@dataclass(slots=True)
class CallerHeaders:
    """What the gateway needs from a caller's headers, and the ones to forward upstream."""

    forward: list[tuple[str, str]] = field(default_factory=list)
    forwarded_names: set[bytes] = field(default_factory=set)
    authorization: bytes | None = None
    connection_choice: bytes | None = None
    request_id: bytes | None = None
    content_length: bytes | None = None
    has_transfer_encoding: bool = False


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",") if t.strip()}


def read_caller_headers(headers: list[tuple[bytes, bytes]]) -> CallerHeaders:
    """One pass over the request headers (ASGI gives lower-case names)."""
    seen = CallerHeaders()
    maton = keygate = None
    listed: set[bytes] = set()
    for name, value in headers:
        if name in _OWN:
            if name == b"authorization":
                seen.authorization = value
            elif name == b"maton-connection":
                maton = maton or value
            elif name == b"keygate-connection":
                keygate = keygate or value
            continue
        if name in HOP_BY_HOP:
            if name == b"transfer-encoding":
                seen.has_transfer_encoding = True
            elif name == b"connection":
                listed |= _tokens(value)
            continue
        if name.startswith(b"keygate-"):
            continue
        if name == b"content-length":
            seen.content_length = value
        elif name == b"x-request-id":
            seen.request_id = value
        seen.forward.append((name.decode("latin-1"), value.decode("latin-1")))
        seen.forwarded_names.add(name)
    if listed:
        # Headers the caller named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
        seen.forward = [(n, v) for n, v in seen.forward if n.encode("latin-1") not in listed]
        seen.forwarded_names -= listed
    seen.connection_choice = maton if maton is not None else keygate
    return seen


def downstream_response_headers(items: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Upstream response headers to pass back to the caller (hop-by-hop removed).

    The client hands over lower-case names, as HTTP/2 and hyper normalise them.
    """
    pairs = list(items)
    out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs if k not in _HOP_BY_HOP_STR]
    if len(out) == len(pairs):
        return out
    for name, value in pairs:
        if name == "connection" and value.lower() not in _PLAIN_CONNECTION:
            listed = _tokens(value.encode("latin-1"))
            return [(k, v) for k, v in out if k not in listed]
    return out
