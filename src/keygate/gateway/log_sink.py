"""The request log's way into the store: batches handed over by `RequestLog.flush`, gathered
for up to half a second and written by one background task, never by a request.

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
from keygate.store.request_logs import MAX_CHUNK, RequestLogRepository
from keygate.store.request_logs import Entry as StoredEntry

log = logging.getLogger("keygate.gateway")

_MAX_NAMES = 50
_MAX_NAME = 100
_QUERY, _CALLER = 8, 9  # in `Entry`


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
    """A batch of gateway entries as the store keeps them (`keygate.store.request_logs.Entry`),
    by workspace; those without a known caller are left out.

    No entry is rebuilt unless it has a query string (whose values must not be kept): the
    store packs the gateway's own tuples, so the common entry costs a few comprehensions here.
    """
    kept: list[StoredEntry] = [entry for entry in entries if entry[_CALLER] is not None]
    for index in [i for i, entry in enumerate(kept) if entry[_QUERY]]:
        entry = kept[index]
        kept[index] = (*entry[:_QUERY], query_names(entry[_QUERY]), *entry[_QUERY + 1 :])
    workspaces = {entry[_CALLER][0] for entry in kept}
    if len(workspaces) <= 1:
        return {workspace: kept for workspace in workspaces}
    batches: dict[str, list[StoredEntry]] = {workspace: [] for workspace in workspaces}
    for entry in kept:
        batches[entry[_CALLER][0]].append(entry)
    return batches


class StoredRequestLog:
    """Writes the gateway's request-log batches to the store from a background task: what
    gathered over `interval` seconds (or sooner, once `batch_rows` rows wait) in one write.

    `RequestLog` hands a batch over every 50 ms for the access log's sake; a write per hand-over
    cost most of its CPU in the write's fixed part (a transaction, a compressor) at low rates,
    so the store's batches gather for longer.
    """

    def __init__(
        self,
        repository: RequestLogRepository,
        max_rows: int,
        *,
        interval: float = 0.5,
        batch_rows: int = MAX_CHUNK,
    ) -> None:
        self._repository = repository
        self._max_rows = max_rows
        self._interval = interval
        self._batch_rows = batch_rows
        self._pending: list[list[Entry]] = []
        self._queued = 0
        self._ready = asyncio.Event()  # something waits
        self._full = asyncio.Event()  # `batch_rows` wait: write now
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def put(self, entries: list[Entry]) -> None:
        """Queue a batch (called by `RequestLog.flush`, on the event loop); dropped and counted
        if `max_rows` rows are already waiting."""
        if self._queued + len(entries) > self._max_rows:
            metrics.count_request_log_dropped("queue_full", len(entries))
            return
        self._pending.append(entries)
        self._queued += len(entries)
        self._ready.set()
        if self._queued >= self._batch_rows:
            self._full.set()

    def start(self) -> None:
        """Start the writer task (inside the serving loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_forever())

    async def close(self, within: float = 5.0) -> None:
        """Write what is queued (for at most `within` seconds), then stop."""
        if self._task is not None:
            self._closing = True
            self._ready.set()
            self._full.set()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, within)  # its write under way, then it ends
            self._task = None
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._write(self._take()), within)

    async def _write_forever(self) -> None:
        while not self._closing:
            await self._ready.wait()
            if not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._interval)
            await self._write(self._take())

    def _take(self) -> list[Entry]:
        """Everything waiting, as one batch."""
        batch = [entry for entries in self._pending for entry in entries]
        self._pending.clear()
        self._queued = 0
        self._ready.clear()
        self._full.clear()
        return batch

    async def _write(self, batch: list[Entry]) -> None:
        if not batch:
            return
        try:
            await self._repository.insert_many(
                time.time() - time.perf_counter(), entry_batches(batch)
            )
        except StoreUnavailable:  # an outage: logged once by the store
            metrics.count_request_log_dropped("store_error", len(batch))
        except Exception:
            log.exception("writing %d request-log rows failed", len(batch))
            metrics.count_request_log_dropped("store_error", len(batch))
