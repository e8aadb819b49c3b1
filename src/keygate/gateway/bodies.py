"""Request bodies: passed whole when they arrive in one piece, streamed (with a limit) otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from keygate.errors import BodyTooLarge

Receive = Any


class ClientDisconnected(Exception):
    """The caller went away while sending its body."""


class StreamedBody:
    """An async iterator over the rest of a request body that enforces a byte limit."""

    def __init__(self, first: bytes, receive: Receive, limit: int) -> None:
        self._first = first
        self._receive = receive
        self._limit = limit
        self.received = len(first)
        self.too_large = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            self.received += len(chunk)
            if self._limit and self.received > self._limit:
                self.too_large = True
                raise BodyTooLarge(self.limit_message(self._limit))
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    @staticmethod
    def limit_message(limit: int) -> str:
        """The error message for a body over the limit."""
        return (
            f"The request body exceeds Keygate's limit of {limit} bytes (KEYGATE_MAX_REQUEST_BODY)."
        )


async def read_first(receive: Receive) -> tuple[bytes, bool]:
    """The first body message: its bytes and whether more follow."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    return message.get("body", b""), bool(message.get("more_body", False))
