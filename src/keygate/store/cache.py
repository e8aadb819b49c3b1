"""An in-process cache of what the proxy reads on every request, so the hot path makes no query.

Every write made through `Database.write` bumps a shared epoch row. This process clears its cache
right after its own writes; the runtime's background loop polls the epoch
(`KEYGATE_CACHE_POLL_INTERVAL`, default 1 s), so another process's write is seen within one poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from keygate.store.records import ApiKeyRecord, ConnectionRecord, CredentialRecord

K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class BoundedMap(Generic[K, V]):
    """A dict that forgets its oldest entries past a size, so hostile input cannot grow it."""

    def __init__(self, max_size: int) -> None:
        self._data: dict[K, V] = {}
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

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def is_missing(value: object) -> bool:
    """Whether a `BoundedMap.get` result is a miss."""
    return value is _MISSING


class StateCache:
    """Keys, connections, default connections and credentials, dropped together on any write."""

    def __init__(self, max_entries: int = 200_000) -> None:
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
        self._loading: dict[tuple[int, object], asyncio.Task[Any]] = {}
        self._listeners: list[Callable[[], None]] = []

    def on_clear(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the cache is cleared (derived caches hook in here)."""
        self._listeners.append(listener)

    def clear(self) -> None:
        """Forget every cached record (and let new requests start fresh loads)."""
        self.generation += 1
        self._loading = {}
        self.keys.clear()
        self.connections.clear()
        self.defaults.clear()
        self.credentials.clear()
        for listener in self._listeners:
            listener()

    async def load(
        self,
        table: BoundedMap[K, V],
        key: K,
        loader: Callable[[], Awaitable[V]],
        store_none: bool = True,
    ) -> V:
        """Fill a miss: one load for all concurrent callers, stored unless a clear intervened.

        The load runs in its own task, so a caller that goes away does not cancel it for the
        others waiting on it.
        """
        flight = (id(table), key)
        task = self._loading.get(flight)
        if task is None:
            # The generation is taken now, not when the task first runs: a clear in between
            # must still void this load.
            task = asyncio.ensure_future(
                self._load_and_store(table, key, loader, flight, store_none, self.generation)
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
        generation: int,
    ) -> V:
        try:
            value = await loader()
        finally:
            if self._loading.get(flight) is asyncio.current_task():
                del self._loading[flight]
        if generation == self.generation and (store_none or value is not None):
            table.put(key, value)
        return value
