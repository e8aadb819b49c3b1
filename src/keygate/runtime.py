"""The composition root: everything a serving process holds, built from one Settings object."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.middleware.types import Middleware

from keygate import metrics
from keygate.catalog.loader import AppOverrides, ConfiguredApp, configure_app, load_catalog
from keygate.catalog.model import AppSpec
from keygate.clock import Clock, system_clock
from keygate.crypto import Cipher, load_keys
from keygate.errors import StoreUnavailable
from keygate.gateway.exact import ExactClient
from keygate.settings import Settings
from keygate.store.apps import AppConfigRepository
from keygate.store.cache import StateCache
from keygate.store.connections import ConnectionRepository
from keygate.store.database import Database
from keygate.store.engine import create_engine, migrate
from keygate.store.events import EventRepository
from keygate.store.keys import KeyRepository
from keygate.store.notify import EpochListener
from keygate.store.ratelimits import RateBuckets
from keygate.store.request_logs import RequestLogRepository
from keygate.store.sessions import SessionRepository, SignOutRepository
from keygate.store.webhooks import WebhookRepository

log = logging.getLogger("keygate")

_IDLE_BUCKET_SECONDS = 3600.0
"""Rate-limit buckets untouched this long are dropped (long since full: the same as none)."""

_PUSH_COALESCE = 0.05
"""Seconds after a reload that notifications are gathered into one more (a burst of writes
elsewhere clears the caches twice, not once per write); also the worst delay it adds."""


def build_upstream_client(settings: Settings, middleware: Middleware | None = None) -> Client:
    """The one pooled keep-alive client this process sends upstream requests with.

    `middleware` sees every upstream request (tests use it to record where requests go).
    """
    builder = ClientBuilder()
    if middleware is not None:
        builder = builder.with_middleware(middleware)
    return (
        builder.connect_timeout(timedelta(seconds=settings.upstream_connect_timeout))
        .read_timeout(timedelta(seconds=settings.upstream_read_timeout))
        .pool_max_idle_per_host(settings.upstream_pool_size)
        .pool_idle_timeout(timedelta(seconds=60))
        .follow_redirects(False)
        .gzip(False)
        .brotli(False)
        .zstd(False)
        .deflate(False)
        .tcp_nodelay(True)
        .build()
    )


class Runtime:
    """Settings, database, repositories, catalog, caches, clock and the upstream client of a
    process."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        catalog: dict[str, AppSpec],
        upstream: Client | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.db = db
        self.catalog = catalog
        self.keys = KeyRepository(db)
        self.connections = ConnectionRepository(db)
        self.app_configs = AppConfigRepository(db)
        self.request_logs = RequestLogRepository(db)
        self.events = EventRepository(db)
        self.webhooks = WebhookRepository(db)
        self.cache = StateCache(outage=db.outage)
        self.apps: dict[str, ConfiguredApp] = {}
        self._upstream: Client | None = upstream
        self._exact = ExactClient(settings)
        self._poller: asyncio.Task[None] | None = None
        self._tasks: list[tuple[asyncio.Task[None], Callable[[], None] | None]] = []
        self._listener: EpochListener | None = None
        self._listening: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[None] | None = None
        self._heard_again = False
        db.after_write(self._after_local_write)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        run_migrations: bool = True,
        upstream: Client | None = None,
        clock: Clock = system_clock,
    ) -> Runtime:
        """Load the key and catalog (refusing to start if either is bad), connect, migrate.

        `upstream` replaces the default upstream client (tests pass one that records requests);
        `clock` the time source token refreshes go by (tests pass one they can advance).
        """
        keys, key_file = load_keys(settings)
        # Keys from the key file are re-read when it changes (a rotation); the variable's are
        # what the process started with.
        cipher = Cipher.from_keys(keys, reload=key_file.read_if_changed if key_file else None)
        catalog = load_catalog(settings.catalog_dir)
        engine = create_engine(
            settings.resolved_database_url,
            settings.database_pool_size,
            settings.database_max_overflow,
        )
        db = Database(engine, cipher)
        if run_migrations:
            await migrate(db.engine)
        runtime = cls(settings, db, catalog, upstream, clock)
        await runtime.reload()
        return runtime

    @property
    def cipher(self) -> Cipher:
        """The credential cipher."""
        return self.db.cipher

    @property
    def exact_upstream(self) -> ExactClient:
        """The client for requests the pooled one would rewrite (see `gateway/exact.py`)."""
        return self._exact

    @property
    def upstream(self) -> Client:
        """The pooled upstream client (created on first use, inside the serving loop)."""
        if self._upstream is None:
            self._upstream = build_upstream_client(self.settings)
        return self._upstream

    async def reload(self) -> None:
        """Clear every cached record and rebuild the configured apps from store and settings.

        Nothing changes unless the store answered both reads: a reload that fails (the store is
        unreachable) leaves the epoch behind, so the next poll tries again.
        """
        epoch = await self.db.epoch()
        stored = await self.app_configs.all()
        self.cache.epoch = epoch
        self.cache.clear()
        from_env = self.settings.apps
        configured = {
            name: configure_app(
                spec,
                from_env.get(name, AppOverrides()).merged_over(stored.get(name, AppOverrides())),
            )
            for name, spec in self.catalog.items()
        }
        # In place, never replaced: the gateway holds this mapping (it takes no Runtime) and
        # reads it with no call per request. The keys are the catalog's, fixed at start-up, so
        # the update swaps values only, in one step no request can see half done.
        self.apps.update(configured)

    async def _after_local_write(self, epoch: int) -> None:
        self.cache.epoch = epoch
        self.cache.clear()
        metrics.count_cache_reload("local")

    def _heard(self, epoch: int | None) -> None:
        """The listener heard a write of another process (`epoch`), or (re)connected (None)."""
        if epoch is not None:
            if epoch <= self.cache.epoch:
                return  # this process's own write, or one a reload already saw
            # Delivered after the write committed: from now on every read sees it.
            self.cache.clear()
            metrics.count_cache_reload("notify")
        if self._catching_up is not None and not self._catching_up.done():
            self._heard_again = True
            return
        self._catching_up = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        """Reload if the epoch moved; once more after `_PUSH_COALESCE` if more was heard."""
        while True:
            self._heard_again = False
            try:
                if await self.db.epoch() != self.cache.epoch:
                    await self.reload()
            except StoreUnavailable:
                return  # the poll tries again (the outage is logged by the store)
            except Exception:
                log.exception("reload after a notification failed")
                return
            await asyncio.sleep(_PUSH_COALESCE)
            if not self._heard_again:
                return

    @property
    def listening(self) -> bool:
        """Whether this process hears other processes' writes at once (PostgreSQL LISTEN)."""
        return self._listener is not None and self._listener.connected

    async def _flush_key_uses(self) -> None:
        uses, self.cache.key_uses = self.cache.key_uses, {}
        if uses:
            try:
                await self.keys.record_use(
                    (key_id, datetime.fromtimestamp(when, UTC)) for key_id, when in uses.items()
                )
            except StoreUnavailable:
                # Kept for the next flush; uses since then are newer and win.
                self.cache.key_uses = uses | self.cache.key_uses
                raise

    async def _background(self) -> None:
        """Forever: notice other processes' writes and a changed key file; every 30 s store
        key-use times and purge spent connect sessions; every
        `request_log_prune_interval` prune the stored request log, audit events and finished
        webhook deliveries."""
        interval = self.settings.cache_poll_interval
        housekeeping_every = max(1, round(30 / interval))
        ticks = 0
        pruned_at = 0.0
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            try:
                self.cipher.reload()  # a stat of the key file, unless it changed
                if await self.db.epoch() != self.cache.epoch:
                    await self.reload()
                    metrics.count_cache_reload("poll")
                # The store answered: what a clear set aside long ago is no longer worth
                # serving in a later outage (it may be a revoked key).
                self.cache.expire_last_good(self.settings.stale_if_error_seconds)
                if ticks % housekeeping_every == 0:
                    await self._flush_key_uses()
                    await SessionRepository(self.db).purge_expired()
                    await SignOutRepository(self.db).purge_expired()
                    if self.db.dialect == "postgresql":
                        await RateBuckets(self.db).purge_idle(_IDLE_BUCKET_SECONDS)
                if time.monotonic() - pruned_at >= self.settings.request_log_prune_interval:
                    pruned_at = time.monotonic()
                    await self.prune_request_log()
                    await self.prune_events()
            except StoreUnavailable:
                pass  # an outage: logged once by the store when it starts and when it ends
            except Exception:  # a bug: say so, and keep polling
                log.exception("background cache poll failed")

    async def prune_events(self) -> int:
        """Delete audit events, and finished webhook deliveries, past their retention; how
        many of each, summed."""
        max_age = timedelta(days=self.settings.event_retention_days)
        return await self.events.prune(max_age) + await self.webhooks.prune_finished(max_age)

    async def prune_request_log(self) -> int:
        """Delete stored requests past the retention age or beyond the row cap; how many."""
        settings = self.settings
        return await self.request_logs.prune(
            timedelta(days=settings.request_log_retention_days), settings.request_log_max_rows
        )

    def start_background(self) -> None:
        """Start the background loop, and on PostgreSQL the epoch listener (call from inside the
        serving event loop)."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._background())
        if self._listening is None and self.db.dialect == "postgresql":
            self._listener = EpochListener(self.db.engine, self._heard)
            self._listening = asyncio.create_task(self._listener.run())

    def run_in_background(
        self,
        work: Callable[[], Coroutine[Any, Any, None]],
        stop: Callable[[], None] | None = None,
    ) -> None:
        """Run `work()` (a loop of its own, such as the refresh scheduler) beside the poll
        until `stop_background` (call from inside the serving event loop). With `stop`, that
        asks the loop to end and waits up to the token timeout for it; otherwise it cancels."""
        self._tasks.append((asyncio.create_task(work()), stop))

    async def stop_background(self) -> None:
        """Stop the cache-epoch poll, the listener and every task `run_in_background` started."""
        started, self._tasks = self._tasks, []
        asked = [task for task, stop in started if stop is not None]
        for _, stop in started:
            if stop is not None:
                stop()
        if asked:
            # A token request under way may take the token timeout; its answer must be stored.
            await asyncio.wait(asked, timeout=self.settings.token_timeout + 5)
        tasks = [task for task, _ in started]
        tasks += [t for t in (self._poller, self._listening, self._catching_up) if t is not None]
        self._poller = self._listening = self._catching_up = None
        self._listener = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop background work, flush key-use times, close the client and the pool."""
        await self.stop_background()
        with contextlib.suppress(Exception):
            await self._flush_key_uses()
        if self._upstream is not None:
            await self._upstream.close()
            self._upstream = None
        await self._exact.close()
        self.request_logs.close()
        await self.db.close()
