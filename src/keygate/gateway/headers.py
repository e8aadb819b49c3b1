"""Which headers cross the gateway, in each direction."""

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
_NEVER_FORWARDED = HOP_BY_HOP | {b"host", b"authorization", b"maton-connection"}

CONNECTION_HEADERS = (b"maton-connection", b"keygate-connection")


def _connection_listed(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    listed: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            listed.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(listed)


def upstream_request_headers(
    headers: list[tuple[bytes, bytes]],
) -> tuple[list[tuple[str, str]], set[bytes]]:
    """Caller headers to forward, and the set of forwarded names (to place defaults)."""
    listed = _connection_listed(headers) if any(n == b"connection" for n, _ in headers) else ()
    out: list[tuple[str, str]] = []
    names: set[bytes] = set()
    for name, value in headers:
        if name in _NEVER_FORWARDED or name.startswith(b"keygate-") or name in listed:
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
        names.add(name)
    return out, names


def downstream_response_headers(items: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Upstream response headers to pass back to the caller (hop-by-hop removed)."""
    out: list[tuple[bytes, bytes]] = []
    listed: set[bytes] = set()
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]
    for name, value in raw:
        if name == b"connection":
            listed.update(t.strip().lower() for t in value.split(b","))
    for name, value in raw:
        if name in HOP_BY_HOP or name in listed:
            continue
        out.append((name, value))
    return out
