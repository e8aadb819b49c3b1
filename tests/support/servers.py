"""Real HTTP servers for tests: an ASGI app served by uvicorn on loopback in a thread."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")


_PICK = random.Random()  # ports, not secrets
_HANDED: set[int] = set()
"""Ports `free_port` returned already: a test that asks for several before binding any (a
fleet's replicas) must not get one twice."""


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def bindable(port: int) -> bool:
    """Whether a loopback listener could bind `port` now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port that was free a moment ago, outside the kernel's ephemeral range.

    A port from `bind(0)` comes from that range, and until the server meant for it binds it,
    the kernel may hand it to any outgoing connection (a database pool's, a client's): two
    clean-machine runs failed on "address already in use" that way. Outside the range only
    another explicit choice can take it."""
    low, high = _ephemeral_ports()
    ports = range(10_000, low) if low > 11_000 else range(high + 1, 65_000)
    for _ in range(200):
        port = _PICK.choice(ports)
        if port not in _HANDED and bindable(port):
            _HANDED.add(port)
            return port
    with socket.socket() as sock:  # nothing free there: the kernel's choice, as before
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
