"""The hot-path cache's bounds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pyreqwest import exceptions as upstream_errors
from sqlalchemy.exc import IntegrityError, OperationalError

from keygate.crypto import generate_key
from keygate.errors import CredentialsUnavailable, StoreUnavailable
from keygate.runtime import Runtime
from keygate.settings import Settings
from keygate.store.cache import BoundedMap, StateCache, is_missing
from keygate.store.outage import StoreOutage, is_unreachable


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


def test_metrics_histogram_buckets_are_cumulative() -> None:
    from keygate.gateway.metrics import GatewayMetrics

    app = f"app-{uuid.uuid4().hex[:8]}"  # the metrics are the process's: this test's own app
    metrics = GatewayMetrics()
    metrics.add([app] * 4, [200] * 4, [0.3, 0.005, 0.001, 0.0051])
    metrics.add([app], [200], [20.0])
    text = metrics.render().decode()
    assert 'le="0.005"' in text
    lines = {
        line.split("}")[0].split(",")[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f'keygate_gateway_request_seconds_bucket{{app="{app}"')
    }
    assert lines['le="0.005"'] == 2
    assert lines['le="0.01"'] == 3
    assert lines['le="0.5"'] == 4
    assert lines['le="+Inf"'] == 5
    assert f'keygate_gateway_requests_total{{app="{app}",status="200"}} 5.0' in text


async def test_concurrent_misses_share_one_load() -> None:
    import asyncio

    state = StateCache(max_entries=10)
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "row"

    results = await asyncio.gather(*(state.load(state.connections, "c", loader) for _ in range(50)))
    assert results == ["row"] * 50  # type: ignore[comparison-overlap]
    assert calls == 1
    assert state.connections.get("c") == "row"  # type: ignore[comparison-overlap]


async def test_a_load_overtaken_by_a_write_does_not_store_the_stale_row() -> None:
    import asyncio

    state = StateCache(max_entries=10)
    release = asyncio.Event()

    async def stale_loader() -> str:
        await release.wait()
        return "old"

    pending = asyncio.ensure_future(state.load(state.credentials, "c", stale_loader))
    await asyncio.sleep(0)
    state.clear()  # a write committed while the old row was being read

    async def fresh_loader() -> str:
        return "new"

    # A request after the write does not join the old load; it reads anew.
    assert await state.load(state.credentials, "c", fresh_loader) == "new"  # type: ignore[comparison-overlap]
    release.set()
    assert await pending == "old"  # type: ignore[comparison-overlap]
    assert state.credentials.get("c") == "new"  # type: ignore[comparison-overlap]


async def _overtaken(
    state: StateCache,
    table: Any,
    key: str,
    read: str | None,
    meanwhile: Callable[[], None],
    store_none: bool = True,
) -> object:
    """Load `key`, which the store answers with `read`, and run `meanwhile` (a clear, a delete)
    while that load is under way; the load's answer."""
    release = asyncio.Event()

    async def slow() -> str | None:
        await release.wait()
        return read

    pending = asyncio.ensure_future(state.load(table, key, slow, store_none=store_none))
    await asyncio.sleep(0)
    meanwhile()
    release.set()
    return await pending


async def test_a_load_overtaken_by_a_clear_is_still_the_last_good_value() -> None:
    """A route served once, by a load that a clear (another write, a poll's reload) overtook,
    is not stored, but an outage right after must still serve it: the read row is as good as
    what the clear set aside. Before, nothing was kept, and the route answered 503 (seen as
    `test_without_the_database_the_limit_falls_back_to_this_process` failing once in a run)."""
    state = StateCache(max_entries=10)
    assert await _overtaken(state, state.credentials, "c", "row", state.clear) == "row"
    assert is_missing(state.credentials.get("c"))  # the next request still reloads
    assert await state.load(state.credentials, "c", _unreachable) == "row"  # type: ignore[comparison-overlap]


async def test_a_load_overtaken_by_a_delete_is_not_kept() -> None:
    """...unless this process deleted the connection meanwhile: an outage must not bring it back."""
    state = StateCache(max_entries=10)

    def delete() -> None:
        state.clear()
        state.forget_connection("c")

    assert await _overtaken(state, state.credentials, "c", "deleted-row", delete) == "deleted-row"
    with pytest.raises(StoreUnavailable):
        await state.load(state.credentials, "c", _unreachable)


async def test_a_load_overtaken_by_a_clear_that_finds_the_key_gone_drops_its_last_good() -> None:
    state = StateCache(max_entries=10)
    state.keys.put("digest", "active-key")  # type: ignore[arg-type]
    state.clear()
    found = await _overtaken(state, state.keys, "digest", None, state.clear, store_none=False)
    assert found is None
    with pytest.raises(StoreUnavailable):
        await state.load(state.keys, "digest", _unreachable, store_none=False)


async def test_unknown_keys_are_not_cached() -> None:
    state = StateCache(max_entries=10)

    async def nothing() -> None:
        return None

    assert await state.load(state.keys, "digest", nothing, store_none=False) is None
    assert is_missing(state.keys.get("digest"))


async def _unreachable() -> str:
    raise StoreUnavailable


async def test_a_cleared_entry_is_served_as_last_good_only_while_the_store_is_unreachable() -> None:
    state = StateCache(max_entries=10)
    state.credentials.put("c", "before")  # type: ignore[arg-type]
    state.clear()
    assert is_missing(state.credentials.get("c"))  # a write still makes the next read reload
    assert await state.load(state.credentials, "c", _unreachable) == "before"  # type: ignore[comparison-overlap]
    assert is_missing(state.credentials.get("c"))  # not stored: reloaded once the store is back

    async def fresh() -> str:
        return "after"

    assert await state.load(state.credentials, "c", fresh) == "after"  # type: ignore[comparison-overlap]
    # Never held: nothing to fall back on.
    with pytest.raises(StoreUnavailable):
        await state.load(state.credentials, "other", _unreachable)


async def test_a_reload_that_finds_nothing_drops_the_last_good_entry() -> None:
    state = StateCache(max_entries=10)
    state.keys.put("digest", "active-key")  # type: ignore[arg-type]
    state.clear()

    async def revoked() -> None:
        return None

    assert await state.load(state.keys, "digest", revoked, store_none=False) is None
    # A later outage must not bring the revoked key back.
    with pytest.raises(StoreUnavailable):
        await state.load(state.keys, "digest", _unreachable, store_none=False)


async def test_a_known_outage_answers_from_last_good_without_waiting_on_the_store() -> None:
    outage = StoreOutage()
    state = StateCache(max_entries=10, outage=outage)
    state.connections.put("c", "row")  # type: ignore[arg-type]
    state.clear()
    outage.failed(ConnectionRefusedError())
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "fresh"

    assert await state.load(state.connections, "c", counted) == "row"  # type: ignore[comparison-overlap]
    assert calls == 0
    outage.succeeded()
    assert await state.load(state.connections, "c", counted) == "fresh"  # type: ignore[comparison-overlap]
    assert calls == 1


def test_what_counts_as_the_store_being_unreachable() -> None:
    assert is_unreachable(ConnectionRefusedError(111, "refused"))
    assert is_unreachable(TimeoutError())
    assert is_unreachable(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert not is_unreachable(IntegrityError("INSERT", {}, Exception("unique")))
    assert not is_unreachable(ValueError("a bug"))
    # An HTTP client's timeout is an OSError too, but not the store's.
    assert not is_unreachable(upstream_errors.ConnectTimeoutError("token endpoint", {}))
    # A Keygate error says what it is, whatever it was raised from.
    translated = CredentialsUnavailable()
    translated.__cause__ = ConnectionRefusedError()
    assert not is_unreachable(translated)


async def test_last_good_entries_expire_while_the_store_is_reachable() -> None:
    """An entry a clear set aside and nobody reloaded (a key revoked elsewhere, say) is not
    served in an outage that begins after the staleness limit; a recent one still is."""
    state = StateCache(max_entries=10)
    state.keys.put("revoked-long-ago", "key-a")  # type: ignore[arg-type]
    state.clear()
    state.expire_last_good(max_age=60)  # the poll, store reachable: still recent, kept
    assert await state.load(state.keys, "revoked-long-ago", _unreachable) == "key-a"  # type: ignore[comparison-overlap]
    state.expire_last_good(max_age=0)  # the poll, once the limit has passed
    with pytest.raises(StoreUnavailable):
        await state.load(state.keys, "revoked-long-ago", _unreachable)
    state.keys.put("recent", "key-b")  # type: ignore[arg-type]
    state.clear()
    assert await state.load(state.keys, "recent", _unreachable) == "key-b"  # type: ignore[comparison-overlap]


async def test_the_runtimes_poll_expires_last_good_entries(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keygate.db'}",
        encryption_key=SecretStr(generate_key()),
        cache_poll_interval=0.05,
        stale_if_error_seconds=0.2,
    )
    runtime = await Runtime.open(settings)
    try:
        runtime.start_background()
        runtime.cache.keys.put("digest", "key")  # type: ignore[arg-type]
        runtime.cache.clear()
        assert runtime.cache.keys.last_good("digest") == "key"
        await asyncio.sleep(1.0)  # several polls, past the limit
        assert is_missing(runtime.cache.keys.last_good("digest"))
    finally:
        await runtime.close()
