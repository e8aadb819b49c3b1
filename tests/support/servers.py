"""Real HTTP servers for tests: an ASGI app served by uvicorn on loopback in a thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _LoopCapture:
    """Wraps an ASGI app to remember the event loop it runs on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


class ServerThread:
    """Serve an ASGI app on 127.0.0.1:port until `stop()`."""

    def __init__(self, app: Any, port: int | None = None, lifespan: str = "on") -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._capture = _LoopCapture(app)
        config = uvicorn.Config(
            self._capture,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan=lifespan,
            loop="asyncio",
            http="h11",
            timeout_keep_alive=30,
            # As granian serves Keygate: the peer is the client, X-Forwarded-For only a header
            # (uvicorn would otherwise take it from 127.0.0.1 as the client's address).
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        """Start and wait until the port accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("test server failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start in 30 s")
            time.sleep(0.02)
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the server's event loop (where its runtime lives)."""
        loop = self._capture.loop
        if loop is None:
            raise RuntimeError("server loop not known yet")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def stop(self) -> None:
        """Ask the server to exit and wait for it."""
        self.server.should_exit = True
        self._thread.join(30)
