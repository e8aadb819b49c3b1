"""The request log's way into the store: batches handed over by `RequestLog.flush`, written by
one background task, never by a request.

The hand-over is a bounded queue. If the store is slow or down, batches wait there; once
`max_rows` rows are waiting, new batches are dropped and counted
(`keygate_request_log_dropped_total{reason="queue_full"}`) rather than blocking requests or
growing without bound, and a batch whose write fails is dropped and counted too
(`reason="store_error"`). The access log (stderr) still has every request.

A request Keygate could not tie to a workspace (no or an invalid API key, an unknown app) is
not stored: no workspace could read it. Only the *names* of query parameters are kept; their
values can hold secrets or personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from urllib.parse import unquote_plus

from keygate import metrics
from keygate.errors import StoreUnavailable
from keygate.gateway.request_log import Entry
from keygate.store.request_logs import Entry as StoredEntry
from keygate.store.request_logs import RequestLogRepository

log = logging.getLogger("keygate.gateway")

_MAX_NAMES = 50
_MAX_NAME = 100
_MAX_PATH = 2048


def query_names(query: bytes) -> list[str]:
    """The distinct parameter names of a query string, in order (values left out)."""
    names: list[str] = []
    for part in query.split(b"&"):
        name = part.partition(b"=")[0].decode("latin-1")
        if "%" in name or "+" in name:  # most names are plain: no unquoting to pay for
            name = unquote_plus(name)
        name = name[:_MAX_NAME]
        if name and name not in names:
            names.append(name)
            if len(names) >= _MAX_NAMES:
                break
    return names


def entry_batches(entries: list[Entry]) -> dict[str, list[StoredEntry]]:
    """The stored entries (`keygate.store.request_logs.Entry`) of a batch of gateway entries,
    by workspace; those without a known caller are left out."""
    offset = time.time() - time.perf_counter()
    batches: dict[str, list[StoredEntry]] = {}
    # The entry's fields, in `Entry`'s order (a positional tuple: the hot path builds it).
    for (
        started,
        seconds,
        method,
        app,
        raw,
        status,
        connection_id,
        request_id,
        query,
        caller,
        by_keygate,
    ) in entries:
        if caller is None:
            continue
        path = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        stored = [
            int((offset + started + seconds) * 1e6),
            app,
            method[:16],
            path[:_MAX_PATH],
            query_names(query) if query else [],
            status,
            int(seconds * 1e6),
            connection_id or None,
            caller[1],
            request_id.decode("latin-1"),
            by_keygate,
        ]
        batch = batches.get(caller[0])
        if batch is None:
            batches[caller[0]] = [stored]
        else:
            batch.append(stored)
    return batches


class StoredRequestLog:
    """Writes the gateway's request-log batches to the store from a background task."""

    def __init__(self, repository: RequestLogRepository, max_rows: int) -> None:
        self._repository = repository
        self._max_rows = max_rows
        self._queue: asyncio.Queue[list[Entry]] = asyncio.Queue()
        self._queued = 0
        self._task: asyncio.Task[None] | None = None

    def put(self, entries: list[Entry]) -> None:
        """Queue a batch (called by `RequestLog.flush`, on the event loop); dropped and counted
        if `max_rows` rows are already waiting."""
        if self._queued + len(entries) > self._max_rows:
            metrics.count_request_log_dropped("queue_full", len(entries))
            return
        self._queued += len(entries)
        self._queue.put_nowait(entries)

    def start(self) -> None:
        """Start the writer task (inside the serving loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_forever())

    async def close(self, within: float = 5.0) -> None:
        """Write what is queued (for at most `within` seconds), then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._write_queued(), within)

    async def _write_forever(self) -> None:
        while True:
            batch = await self._queue.get()
            await self._write(self._take(batch))

    async def _write_queued(self) -> None:
        while not self._queue.empty():
            await self._write(self._take(self._queue.get_nowait()))

    def _take(self, first: list[Entry]) -> list[Entry]:
        """`first` and whatever else is waiting, as one batch (one statement)."""
        batch = list(first)
        while not self._queue.empty():
            batch.extend(self._queue.get_nowait())
        self._queued -= len(batch)
        return batch

    async def _write(self, batch: list[Entry]) -> None:
        try:
            await self._repository.insert_many(entry_batches(batch))
        except StoreUnavailable:  # an outage: logged once by the store
            metrics.count_request_log_dropped("store_error", len(batch))
        except Exception:
            log.exception("writing %d request-log rows failed", len(batch))
            metrics.count_request_log_dropped("store_error", len(batch))
