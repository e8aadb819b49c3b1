"""Request bodies: passed whole when they arrive in one piece, streamed (with a limit) otherwise,
and read with an idle limit either way.

What granian hands the app when a body goes wrong: a malformed chunk (a bad size line, a chunk
longer than its size) or a connection that closes mid-body both arrive as `http.disconnect`
from `receive()` — nothing is raised, and the two cannot be told apart. Granian then lets the
app answer (a response to a connection that is really gone is dropped), and if the app returns
without answering, it writes its own plain-text 500. So a body that ends in `http.disconnect` is
answered 400 `invalid_request` (`MalformedBody`) here, on every surface.

A body that stops arriving is Keygate's to time out (granian has no body timeout): each wait
for the next piece may last `KEYGATE_BODY_IDLE_TIMEOUT` seconds, then 408 `request_timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from time import monotonic
from typing import Any

from keygate.errors import BodyTooLarge, KeygateError, MalformedBody, RequestTimeout

Receive = Any


class BodyReader:
    """Awaits request body messages, each within `idle_timeout` seconds.

    A timer per read (`asyncio.timeout`, `call_later`) cost 2 to 10 µs a read under uvloop,
    more than the rest of a small POST's body handling; so a read only notes what it awaits and
    its deadline in a dict, and one sweep — due every `idle_timeout / 4` seconds (at most 1 s)
    while any read waits — cancels the reads past their deadline. A stalled read is thus ended
    between `idle_timeout` and `idle_timeout` plus one sweep interval after it started.

    Under granian, `receive()` returns a future of granian's own, and cancelling it ends just
    that await (the task is not cancelled). A server whose `receive()` is a coroutine (uvicorn,
    in tests) has the awaiting task cancelled instead, and the cancellation taken back.
    """

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self._interval = min(1.0, idle_timeout / 4)
        self._waiting: dict[Any, float] = {}
        """What each stalled-or-not read awaits (granian's future, or the task): its deadline."""
        self._expired: set[Any] = set()
        self._sweep: asyncio.TimerHandle | None = None

    async def read(self, receive: Receive) -> tuple[bytes, bool]:
        """The next body message's bytes and whether more follow.

        `RequestTimeout` when it waits past the idle limit; `MalformedBody` for a disconnect.
        """
        pending = receive()
        key: Any = pending if hasattr(pending, "cancel") else asyncio.current_task()
        if key is None:  # neither cancellable nor awaited in a task (no ASGI server): no limit
            message = await pending
        else:
            self._waiting[key] = monotonic() + self.idle_timeout
            if self._sweep is None:
                self._arm()
            try:
                message = await pending
            except asyncio.CancelledError:
                if key not in self._expired:
                    raise  # the server's cancellation (shutdown) goes on
                self._expired.discard(key)
                if key is not pending:
                    key.uncancel()
                raise RequestTimeout(self.timeout_message()) from None
            finally:
                del self._waiting[key]
        if message["type"] == "http.disconnect":
            raise MalformedBody
        return message.get("body", b""), bool(message.get("more_body", False))

    def timeout_message(self) -> str:
        """The error message for a stalled body."""
        return (
            f"The request body sent nothing for {self.idle_timeout:g} seconds "
            "(KEYGATE_BODY_IDLE_TIMEOUT)."
        )

    def _arm(self) -> None:
        self._sweep = asyncio.get_running_loop().call_later(self._interval, self._cancel_late)

    def _cancel_late(self) -> None:
        self._sweep = None
        now = monotonic()
        for key, deadline in list(self._waiting.items()):
            if deadline <= now and key not in self._expired:
                self._expired.add(key)
                key.cancel()
        if self._waiting:
            self._arm()


class StreamedBody:
    """An async iterator over the rest of a request body that enforces a byte limit."""

    def __init__(self, first: bytes, receive: Receive, limit: int, reader: BodyReader) -> None:
        self._first = first
        self._receive = receive
        self._limit = limit
        self._reader = reader
        self.received = len(first)
        self.failure: KeygateError | None = None
        """Why the body stopped early (too large, stalled, malformed), once it has."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
        while True:
            try:
                chunk, more = await self._reader.read(self._receive)
            except KeygateError as error:
                self.failure = error
                raise
            self.received += len(chunk)
            if self._limit and self.received > self._limit:
                self.failure = BodyTooLarge(self.limit_message(self._limit))
                raise self.failure
            if chunk:
                yield chunk
            if not more:
                return

    @staticmethod
    def limit_message(limit: int) -> str:
        """The error message for a body over the limit."""
        return (
            f"The request body exceeds Keygate's limit of {limit} bytes (KEYGATE_MAX_REQUEST_BODY)."
        )
