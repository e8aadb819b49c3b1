"""A webhook receiver on loopback that verifies every delivery with the `standardwebhooks`
library, as a workspace's own server would, and answers as the test tells it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.servers import ServerThread


@dataclass
class Received:
    """One delivery as it arrived, and whether its signature verified."""

    webhook_id: str
    timestamp: str
    verified: bool
    body: dict[str, Any]
    at: float
    answered: int
    host: str = ""
    """The request's Host header."""


@dataclass
class WebhookReceiver:
    """An ASGI app: records deliveries; answers `status` (with `retry_after`, if set), or
    holds the request open while `hold` is set."""

    secret: str | None = None
    status: int = 200
    retry_after: str | None = None
    hold: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if self.hold.is_set():
            self.held.set()
            while self.hold.is_set():
                await asyncio.sleep(0.05)
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        status = self.status
        self.received.append(
            Received(
                headers.get("webhook-id", ""),
                headers.get("webhook-timestamp", ""),
                verified,
                orjson.loads(body) if body else {},
                time.monotonic(),
                status,
                headers.get("host", ""),
            )
        )
        out = [(b"content-type", b"text/plain")]
        if self.retry_after is not None and status >= 300:
            out.append((b"retry-after", self.retry_after.encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b"ok"})

    def accepted(self) -> list[Received]:
        """The deliveries it answered 2xx, in arrival order."""
        return [r for r in self.received if 200 <= r.answered < 300]


def serve_receiver(receiver: WebhookReceiver) -> ServerThread:
    """Serve the receiver on a loopback port."""
    return ServerThread(receiver, lifespan="off").start()
