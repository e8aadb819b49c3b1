"""An httpx transport that serves requests with an ASGI app of this process, streaming replies.

httpx's own `ASGITransport` collects the whole response body before returning; the MCP tools
read at most their body limit of a gateway answer and then stop, so the body is streamed here
through a small bounded buffer, and closing the response cancels the app's work on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

_BUFFERED_CHUNKS = 4


class _Body(httpx.AsyncByteStream):
    """The response body as the app sends it; closing it before its end stops the app."""

    def __init__(self, chunks: MemoryObjectReceiveStream[bytes], task: asyncio.Task[None]) -> None:
        self._chunks = chunks
        self._task = task
        self._ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk
        self._ended = True

    async def aclose(self) -> None:
        self._chunks.close()
        # Read to its end, the app is only finishing (its request log line): let it. Left
        # early, the rest is not wanted: the gateway stops reading the upstream.
        if not self._ended and not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class InProcessTransport(httpx.AsyncBaseTransport):
    """Requests answered by `app` in this event loop, as if they came from loopback."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app for one request; return once it has started its response."""
        body = await request.aread()
        url = request.url
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
            "client": ("127.0.0.1", 0),
        }
        started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        sender, chunks = anyio.create_memory_object_stream[bytes](_BUFFERED_CHUNKS)
        request_sent = False
        finished = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    await sender.send(chunk)
                if not message.get("more_body", False):
                    sender.close()

        async def serve() -> None:
            try:
                await self._app(scope, receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
            finally:
                finished.set()
                sender.close()
                if not started.done():
                    started.set_exception(RuntimeError("the app sent no response"))

        task = asyncio.create_task(serve())
        try:
            start = await started
        except Exception as exc:
            raise httpx.TransportError(f"in-process request failed: {type(exc).__name__}") from exc
        except BaseException:  # cancelled while waiting: the app's work is not wanted either
            task.cancel()
            raise
        return httpx.Response(
            start["status"], headers=start.get("headers", []), stream=_Body(chunks, task)
        )
