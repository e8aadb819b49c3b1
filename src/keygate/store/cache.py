"""An in-process cache of what the proxy reads on every request, so the hot path makes no query.

Every write made through `Database.write` bumps a shared epoch row. This process clears its cache
right after its own writes. On PostgreSQL the write also notifies every listening process, which
clears its cache as soon as it hears (`keygate.store.notify`: milliseconds); the runtime's
background loop polls the epoch (`KEYGATE_CACHE_POLL_INTERVAL`, default 1 s) as the fallback —
on SQLite, or while a listener reconnects — so another process's write is seen within one poll.

A clear does not throw entries away: it sets them aside as "last good". The next read of an entry
reloads it from the store, as before; only when the store is unreachable (StoreUnavailable) is the
last good entry served instead, so a database outage right after a write does not take down every
route. A successful reload replaces the last good entry — or, when it finds nothing, drops it (a
revoked key must not come back in a later outage). An entry nobody asked for since the clear is
not reloaded, so it could be a revoked key's or a deleted connection's: while the store is
reachable the runtime's poll drops last good entries older than `KEYGATE_STALE_IF_ERROR_SECONDS`
(`expire_last_good`), so an outage can only bring back what was current that recently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from keygate.errors import StoreUnavailable
from keygate.store.outage import StoreOutage
from keygate.store.records import ApiKeyRecord, ConnectionRecord, CredentialRecord

K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class BoundedMap(Generic[K, V]):
    """A dict that forgets its oldest entries past a size, so hostile input cannot grow it;
    cleared entries are kept aside as last good (bounded alike) until reloaded."""

    def __init__(self, max_size: int) -> None:
        self._data: dict[K, V] = {}
        self._last_good: dict[K, tuple[V, float]] = {}
        """Cleared entries: the value and when (monotonic) a clear set it aside."""
        self._max = max_size
        self.lookup: Callable[[K], V | None] = self._data.get
        """The value or None: `dict.get` of the map, bound once (the hot path's read costs no
        Python-level call)."""

    def get(self, key: K) -> V | object:
        """The value, or the module's missing sentinel."""
        return self._data.get(key, _MISSING)

    def put(self, key: K, value: V) -> None:
        """Store, evicting the oldest entry when full."""
        if len(self._data) >= self._max and key not in self._data:
            self._data.pop(next(iter(self._data)))
        self._data[key] = value
        self._last_good.pop(key, None)

    def last_good(self, key: K) -> V | object:
        """The value this key had before the last clear (not reloaded since), or missing."""
        kept = self._last_good.get(key)
        return _MISSING if kept is None else kept[0]

    def keep_aside(self, key: K, value: V) -> None:
        """Hold a value read before the last clear as last good, unless the key has a newer
        value or last good already (a load the clear overtook: see `StateCache.load`)."""
        if key in self._data or key in self._last_good:
            return
        if len(self._last_good) >= self._max:
            self._last_good.pop(next(iter(self._last_good)))
        self._last_good[key] = (value, time.monotonic())

    def drop_last_good(self, key: K) -> None:
        """Drop only the last good value (the key was found gone by a read a clear overtook)."""
        self._last_good.pop(key, None)

    def forget(self, key: K) -> None:
        """Drop a key, its last good value included (it is known to be gone)."""
        self._data.pop(key, None)
        self._last_good.pop(key, None)

    def clear(self) -> None:
        """Empty the map; what it held stays as last good until reloaded or expired."""
        now = time.monotonic()
        aside = {key: (value, now) for key, value in self._data.items()}
        if len(self._last_good) + len(aside) > self._max:
            self._last_good = aside  # the newest entries are the ones worth keeping
        else:
            self._last_good.update(aside)
        self._data.clear()  # in place: `lookup` is bound to this dict

    def expire_last_good(self, set_aside_before: float) -> None:
        """Drop the last good entries a clear set aside before that (monotonic) moment."""
        if self._last_good:
            self._last_good = {
                key: kept for key, kept in self._last_good.items() if kept[1] >= set_aside_before
            }

    def __len__(self) -> int:
        return len(self._data)


def is_missing(value: object) -> bool:
    """Whether a `BoundedMap.get` result is a miss."""
    return value is _MISSING


class StateCache:
    """Keys, connections, default connections and credentials, cleared together on any write."""

    def __init__(self, max_entries: int = 200_000, outage: StoreOutage | None = None) -> None:
        self.keys: BoundedMap[str, ApiKeyRecord | None] = BoundedMap(max_entries)
        self.connections: BoundedMap[str, ConnectionRecord | None] = BoundedMap(max_entries)
        self.defaults: BoundedMap[tuple[str, str], ConnectionRecord | None] = BoundedMap(
            max_entries
        )
        self.credentials: BoundedMap[str, CredentialRecord | None] = BoundedMap(max_entries)
        self.key_uses: dict[str, float] = {}
        """API key id → last use (epoch seconds), stored by the runtime every 30 s."""
        self.epoch = -1
        self.generation = 0
        """Bumped by every clear: a load that started before a clear must not store its row."""
        self.forgets = 0
        """Bumped by every `forget_connection`: a load that started before one keeps nothing."""
        self._outage = outage or StoreOutage()
        self._loading: dict[tuple[int, object], asyncio.Task[Any]] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_clear(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the cache is cleared (derived caches hook in here)."""
        self._listeners.append(listener)

    def clear(self) -> None:
        """Make every cached record reload before use (and let new requests start fresh loads);
        the records stay as last good while the store is unreachable."""
        self.generation += 1
        self._loading = {}
        self.keys.clear()
        self.connections.clear()
        self.defaults.clear()
        self.credentials.clear()
        for listener in self._listeners:
            listener()

    def expire_last_good(self, max_age: float) -> None:
        """Drop last good entries set aside more than `max_age` seconds ago (call while the store
        is reachable: those entries could be revoked keys or deleted connections)."""
        before = time.monotonic() - max_age
        for table in (self.keys, self.connections, self.defaults, self.credentials):
            table.expire_last_good(before)

    def forget_connection(self, connection_id: str) -> None:
        """Drop a connection this process deleted, last good included: an outage right after
        the delete must not bring its credential back."""
        self.forgets += 1
        self.connections.forget(connection_id)
        self.credentials.forget(connection_id)

    async def load(
        self,
        table: BoundedMap[K, V],
        key: K,
        loader: Callable[[], Awaitable[V]],
        store_none: bool = True,
    ) -> V:
        """Fill a miss: one load for all concurrent callers, stored unless a clear intervened.

        The load runs in its own task, so a caller that goes away does not cancel it for the
        others waiting on it. When the store is unreachable, the last good value is the answer.
        """
        flight = (id(table), key)
        task = self._loading.get(flight)
        if task is None:
            if self._outage.down:
                # Known down: answer from the last good value at once rather than wait on the
                # store for each request (the runtime's poll notices the recovery).
                last = table.last_good(key)
                if not is_missing(last):
                    return last  # type: ignore[return-value]
            # The generation is taken now, not when the task first runs: a clear in between
            # must still void this load.
            task = asyncio.ensure_future(
                self._load_and_store(
                    table, key, loader, flight, store_none, (self.generation, self.forgets)
                )
            )
            self._loading[flight] = task
        result: V = await asyncio.shield(task)
        return result

    async def _load_and_store(
        self,
        table: BoundedMap[K, V],
        key: K,
        loader: Callable[[], Awaitable[V]],
        flight: tuple[int, object],
        store_none: bool,
        started: tuple[int, int],
    ) -> V:
        try:
            value = await loader()
        except StoreUnavailable:
            last = table.last_good(key)
            if is_missing(last):
                raise
            return last  # type: ignore[return-value]
        finally:
            if self._loading.get(flight) is asyncio.current_task():
                del self._loading[flight]
        generation, forgets = started
        if generation == self.generation:
            if store_none or value is not None:
                table.put(key, value)
            else:
                table.forget(key)
        elif forgets == self.forgets:
            # A clear overtook the load: the row may predate that write, so it is not current,
            # but it is as good as what the clear set aside. Without it, a route just served
            # would answer 503 in an outage that followed. Found gone (a revoked key), it is
            # not brought back by an older last good either.
            if store_none or value is not None:
                table.keep_aside(key, value)
            else:
                table.drop_last_good(key)
        return value
