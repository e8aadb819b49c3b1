"""The upstream client for requests the pooled client cannot send byte for byte.

The pooled client (pyreqwest) parses every URL with the WHATWG parser of the Rust `url` crate,
which percent-encodes `"`, `<`, `>`, `` ` ``, `{` and `}` in a path and `"`, `'`, `<` and `>`
in a query, and it takes header values as `str`, sent as UTF-8, so a value that is not UTF-8
cannot be sent at all. The contract forwards what a caller sent byte for byte, so a request
holding any of those goes upstream through httpcore instead, over HTTP/1.1, with the request
target and the header values handed over as bytes. Such requests are rare (most clients encode
those bytes themselves); everything else takes the pooled client.

The exchange matches the pooled client's: the same timeouts, no redirects followed, bodies not
decoded, streamed both ways, and the same default `Accept` and `User-Agent` when the caller sent
none, so the upstream cannot tell which client a request came by.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpcore

from keygate.errors import KeygateError, UpstreamTimeout, UpstreamUnreachable
from keygate.settings import Settings

# What the pooled client adds to a request that carries neither header.
_DEFAULTS = ((b"accept", b"*/*"), (b"user-agent", b"python-pyreqwest/1.0.0"))


class ExactHeaders:
    """Response headers in the shape the gateway reads from the pooled client's responses."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._items = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw]

    def items(self) -> list[tuple[str, str]]:
        """(lower-case name, value) pairs; latin-1, so `encode("latin-1")` gives the bytes back."""
        return self._items

    def get(self, name: str) -> str | None:
        """The first value of a header, by lower-case name."""
        return next((v for k, v in self._items if k == name), None)


class ExactBodyReader:
    """Reads an upstream response body chunk by chunk."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def read_chunk(self) -> bytes | None:
        """The next chunk, or None at the end."""
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None
        except httpcore.TimeoutException as exc:
            raise UpstreamTimeout() from exc
        except httpcore.NetworkError as exc:
            raise UpstreamUnreachable() from exc
        except httpcore.ProtocolError as exc:
            raise UpstreamUnreachable() from exc


class ExactResponse:
    """An upstream response, read through the same calls as a pooled-client response."""

    def __init__(self, response: httpcore.Response) -> None:
        self.status = response.status
        self.headers = ExactHeaders(response.headers)
        self.body_reader = ExactBodyReader(aiter(response.aiter_stream()))

    def get_header(self, name: str) -> str | None:
        """The first value of a header, by lower-case name."""
        return self.headers.get(name)

    async def bytes(self) -> bytes:
        """The whole body."""
        parts = []
        while (chunk := await self.body_reader.read_chunk()) is not None:
            parts.append(chunk)
        return b"".join(parts)


class ExactClient:
    """A pooled HTTP/1.1 client that sends the request target and header values as given."""

    def __init__(self, settings: Settings) -> None:
        self._timeouts = {
            "connect": settings.upstream_connect_timeout,
            "read": settings.upstream_read_timeout,
            "write": settings.upstream_read_timeout,
            "pool": None,
        }
        self._size = settings.upstream_pool_size
        self._pool: httpcore.AsyncConnectionPool | None = None

    def _connections(self) -> httpcore.AsyncConnectionPool:
        # Built on first use, inside the serving loop.
        if self._pool is None:
            self._pool = httpcore.AsyncConnectionPool(
                max_connections=self._size,
                max_keepalive_connections=self._size,
                keepalive_expiry=60,
                http1=True,
                http2=False,
            )
        return self._pool

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
    ) -> AsyncIterator[ExactResponse]:
        """Send a request and yield its response, the body still to read.

        `url` is the app's base URL with the caller's path and query appended, unparsed; header
        values that were not UTF-8 arrive as surrogate escapes (see `read_caller_headers`), and
        the caller's values were checked for control bytes (`refuse_control_bytes`).
        """
        scheme, _, rest = url.partition("://")
        authority, _, path = rest.partition("/")
        origin = urlsplit(f"{scheme}://{authority}")
        raw = [(k.encode("latin-1"), v.encode("utf-8", "surrogateescape")) for k, v in headers]
        names = {k for k, _ in raw}
        raw.append((b"host", authority.encode("ascii")))
        raw.extend((k, v) for k, v in _DEFAULTS if k not in names)
        if body is not None and b"content-length" not in names:
            if isinstance(body, bytes):
                raw.append((b"content-length", str(len(body)).encode()))
            else:
                raw.append((b"transfer-encoding", b"chunked"))
        request_url = httpcore.URL(
            scheme=scheme.encode("ascii"),
            host=(origin.hostname or "").encode("ascii"),
            port=origin.port,
            target=("/" + path).encode("ascii"),
        )
        extensions: dict[str, Any] = {"timeout": self._timeouts}
        content: bytes | AsyncIterator[bytes]
        content = b"" if body is None else body if isinstance(body, bytes) else aiter(body)
        try:
            async with self._connections().stream(
                method, request_url, headers=raw, content=content, extensions=extensions
            ) as response:
                yield ExactResponse(response)
        except KeygateError:
            raise
        except httpcore.TimeoutException as exc:
            raise UpstreamTimeout() from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise UpstreamUnreachable() from exc

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
