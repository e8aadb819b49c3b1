"""The hot-path cache's bounds."""

from __future__ import annotations

from keygate.store.cache import BoundedMap, StateCache, is_missing


def test_bounded_map_evicts_oldest() -> None:
    cache: BoundedMap[str, int] = BoundedMap(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert is_missing(cache.get("a"))
    assert cache.get("b") == 2
    assert cache.get("c") == 3
    assert len(cache) == 2


def test_clear_notifies_listeners() -> None:
    state = StateCache(max_entries=10)
    seen: list[str] = []
    state.on_clear(lambda: seen.append("cleared"))
    state.connections.put("x", None)
    state.clear()
    assert seen == ["cleared"]
    assert is_missing(state.connections.get("x"))
