"""An in-process cache of what the proxy reads on every request, so the hot path makes no query.

Every write made through `Database.write` bumps a shared epoch row. This process clears its cache
right after its own writes; the runtime's background loop polls the epoch
(`KEYGATE_CACHE_POLL_INTERVAL`, default 1 s), so another process's write is seen within one poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from keygate.store.records import ApiKeyRecord, ConnectionRecord, CredentialRecord

K = TypeVar("K")
V = TypeVar("V")
_MISSING = object()


class BoundedMap(Generic[K, V]):
    """A dict that forgets its oldest entries past a size, so hostile input cannot grow it."""

    def __init__(self, max_size: int) -> None:
        self._data: dict[K, V] = {}
        self._max = max_size

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
        self.keys: BoundedMap[str, ApiKeyRecord] = BoundedMap(max_entries)
        self.connections: BoundedMap[str, ConnectionRecord | None] = BoundedMap(max_entries)
        self.defaults: BoundedMap[tuple[str, str], ConnectionRecord | None] = BoundedMap(
            max_entries
        )
        self.credentials: BoundedMap[str, CredentialRecord | None] = BoundedMap(max_entries)
        self.key_uses: dict[str, float] = {}
        """API key id → last use (epoch seconds), stored by the runtime every 30 s."""
        self.epoch = -1
        self._listeners: list[Callable[[], None]] = []

    def on_clear(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever the cache is cleared (derived caches hook in here)."""
        self._listeners.append(listener)

    def clear(self) -> None:
        """Forget every cached record."""
        self.keys.clear()
        self.connections.clear()
        self.defaults.clear()
        self.credentials.clear()
        for listener in self._listeners:
            listener()
