"""Hearing other processes' writes at once: PostgreSQL LISTEN on the epoch channel.

Every `Database.write` on PostgreSQL bumps the cache epoch and notifies `EPOCH_CHANNEL` in the
same statement, so the notification is delivered when the write commits, to every listening
replica. A process listens on one connection of its own (outside the pool, which would hand it
to queries), and hears a write within a few milliseconds instead of at its next poll.

The poll (`KEYGATE_CACHE_POLL_INTERVAL`) stays, as the fallback: SQLite has no notifications,
and a listener connection can be lost (a database restart, a failover, a terminated backend).
A lost connection is noticed at once when the server closes it, or by a ping when the network
silently drops it; it reconnects by itself with a growing delay, and after every (re)connect the
process checks the epoch, because notifications sent while nobody listened are not replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from keygate.store.database import EPOCH_CHANNEL

log = logging.getLogger("keygate.store")

APPLICATION_NAME = "keygate-listener"
"""The listener connection's `application_name` (visible in `pg_stat_activity`)."""

_PING_EVERY = 5.0
"""Seconds between liveness checks of a quiet listener connection (a cut that sends no FIN)."""
_RETRY_FIRST, _RETRY_MAX = 0.1, 5.0


class EpochListener:
    """Calls `heard(epoch)` for every epoch another process commits, and `heard(None)` after
    each (re)connect (something may have been missed: check the epoch)."""

    def __init__(self, engine: AsyncEngine, heard: Callable[[int | None], None]) -> None:
        _, self._connect_args = engine.dialect.create_connect_args(engine.url)
        self._heard = heard
        self.connected = False
        """Whether the listener connection is up (tests and the metrics read it)."""

    async def run(self) -> None:
        """Listen forever, reconnecting after every loss (cancel the task to stop)."""
        delay = _RETRY_FIRST
        while True:
            try:
                await self._listen_once()
                delay = _RETRY_FIRST  # it was up: the next loss starts the backoff over
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.debug("epoch listener: %s", type(exc).__name__)
            self.connected = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    async def _listen_once(self) -> None:
        """One listener connection, until it is lost."""
        args: dict[str, Any] = {**self._connect_args, "timeout": 10}
        args["server_settings"] = {
            **args.get("server_settings", {}),
            "application_name": APPLICATION_NAME,
        }
        connection = await asyncpg.connect(**args)
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            await connection.add_listener(EPOCH_CHANNEL, self._notified)
            self.connected = True
            self._heard(None)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), _PING_EVERY)
                if not lost.is_set():
                    await connection.execute("SELECT 1", timeout=_PING_EVERY)
        finally:
            self.connected = False
            connection.terminate()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            epoch = int(payload)
        except ValueError:
            epoch = None  # not ours: check the epoch all the same
        self._heard(epoch)
