"""The bare pass-through: Keygate's server and client stack (granian, pyreqwest), nothing else.

It forwards method, path, query and body to one upstream, injects one header, and copies status,
headers and body back — the same message pattern as Keygate's proxy (small bodies in one message,
large ones streamed), without auth, connection choice, request ids, metrics or logs. Its
throughput is what the stack alone can do; Keygate / bare is what Keygate's features cost.

Run: `python -m bench.bare --port 9000 --upstream http://127.0.0.1:8000 [--workers 1]`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from pyreqwest.client import Client, ClientBuilder

_DROP = frozenset(
    {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"trailer"}
)
_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})
_WHOLE_RESPONSE_MAX = 64 * 1024


class BarePassThrough:
    """An ASGI app forwarding every request to `upstream` with one injected header."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._client: Client | None = None

    def _pool(self) -> Client:
        # Built on first use, inside the serving loop, like Keygate's runtime does.
        if self._client is None:
            self._client = (
                ClientBuilder()
                .connect_timeout(timedelta(seconds=10))
                .read_timeout(timedelta(seconds=120))
                .pool_max_idle_per_host(256)
                .follow_redirects(False)
                .gzip(False)
                .brotli(False)
                .zstd(False)
                .deflate(False)
                .tcp_nodelay(True)
                .build()
            )
        return self._client

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        url = self._upstream + raw_path.decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name not in _DROP and name != b"authorization"
        ]
        headers.append(("authorization", "Bearer upstream-token"))
        builder = self._pool().request(scope["method"], url).headers(headers)
        # Like Keygate: HTTP/1.1 without Content-Length or Transfer-Encoding has no body, so
        # there is nothing to receive() (a receive() per GET costs a thread hand-off in granian).
        if scope.get("http_version") == "2" or any(
            name in _BODY_HEADERS for name, _ in scope["headers"]
        ):
            message = await receive()
            first: bytes = message.get("body", b"")
            if message.get("more_body", False):
                builder = builder.body_stream(_rest(first, receive))
            elif first:
                builder = builder.body_bytes(first)
        async with builder.build_streamed() as response:
            out = [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in response.headers.items()
                if name.lower().encode("latin-1") not in _DROP
            ]
            length = response.get_header("content-length")
            if length is not None and int(length) <= _WHOLE_RESPONSE_MAX:
                body = bytes(await response.bytes())
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": out}
                )
                await send({"type": "http.response.body", "body": body})
                return
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            reader = response.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _rest(first: bytes, receive: Any) -> AsyncIterator[bytes]:
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def app_from_environment() -> BarePassThrough:
    """The app for a granian worker (the upstream comes from the launcher's environment)."""
    return BarePassThrough(os.environ["BENCH_BARE_UPSTREAM"])


def main() -> None:
    """Serve the bare pass-through with granian, configured like `keygate serve`."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ["BENCH_BARE_UPSTREAM"] = args.upstream
    Granian(
        "bench.bare:app_from_environment",
        factory=True,
        address="127.0.0.1",
        port=args.port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        loop=Loops.uvloop,
        log_level="warning",  # type: ignore[arg-type]
        backlog=2048,
    ).serve()


if __name__ == "__main__":
    main()
