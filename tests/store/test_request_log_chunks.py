"""The request log's chunked store: a filtered, paged read gives exactly the entries a plain
filter over every logged request gives, in order, whatever chunks they sit in; pruning holds
its limits exactly and never moves a cursor."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from keygate.crypto import Cipher, generate_key, parse_key
from keygate.store.database import Database
from keygate.store.engine import create_engine, migrate
from keygate.store.request_logs import (
    MAX_CHUNK,
    Entry,
    RequestLogFilter,
    RequestLogRepository,
)
from tests.support.databases import PG_URL, fresh_database

T = TypeVar("T")
START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
APPS = ("klaviyo", "constant-contact", "hub_spot")  # "_": a LIKE wildcard, escaped
CONNECTIONS = ("c-1", "c-2", "c%3", None)


OFFSET = START.timestamp() - 1000.0
"""The batches' perf_counter → wall-clock offset: entry i ends at START + i ms."""


def _entry(index: int, rng: random.Random, workspace: str = "w") -> list[Any]:
    """A stored entry, as `log_sink.entry_batches` gives it (the gateway's tuple)."""
    return [
        1000.0 + index / 1000 - 0.0015,
        0.0015,
        "GET",
        rng.choice(APPS),
        f"/p/{index}".encode(),
        rng.choice((200, 201, 404, 429, 500, 502)),
        rng.choice(CONNECTIONS),
        f"r{index}".encode(),
        ["page"] if index % 3 else b"",
        (workspace, "kg_abc"),
        index % 2 == 0,
    ]


def _ended(entry: Entry) -> float:
    return float(OFFSET + entry[0] + entry[1])


def _run(url: str, scenario: Callable[[RequestLogRepository], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(url)
        await migrate(engine)
        try:
            return await scenario(
                RequestLogRepository(Database(engine, Cipher(parse_key(generate_key(), "t"))))
            )
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _wanted(
    entries: list[tuple[str, Entry]], workspace: str, filters: RequestLogFilter
) -> list[str]:
    since = None if filters.since is None else filters.since.timestamp()
    until = None if filters.until is None else filters.until.timestamp()
    return [
        e[7].decode()
        for ws, e in entries
        if ws == workspace
        and (filters.app is None or e[3] == filters.app)
        and (filters.connection_id is None or e[6] == filters.connection_id)
        and (filters.status_class is None or e[5] // 100 == filters.status_class)
        and (since is None or _ended(e) >= since)
        and (until is None or _ended(e) < until)
    ]


FILTERS = [
    RequestLogFilter(),
    RequestLogFilter(app="hub_spot"),
    RequestLogFilter(app="hub%spot"),  # a wildcard in the filter matches nothing
    RequestLogFilter(connection_id="c%3"),
    RequestLogFilter(connection_id="c-2", status_class=5),
    RequestLogFilter(status_class=4, app="klaviyo"),
    RequestLogFilter(since=START + timedelta(seconds=0.3), until=START + timedelta(seconds=0.9)),
    RequestLogFilter(status_class=3),
]


def test_filtered_pages_match_a_plain_filter_in_both_orders(tmp_path: Path) -> None:
    rng = random.Random(7)
    logged: list[tuple[str, Entry]] = []
    batches: list[dict[str, list[Entry]]] = []
    index = 0
    for size in (1, 5, 300, 2, 40, 700, 1, 60):  # batches of every size, two workspaces
        batch: dict[str, list[Entry]] = {}
        for _ in range(size):
            workspace = "w1" if rng.random() < 0.8 else "w2"
            entry = _entry(index, rng, workspace)
            index += 1
            batch.setdefault(workspace, []).append(entry)
            logged.append((workspace, entry))
        batches.append(batch)

    async def scenario(repository: RequestLogRepository) -> None:
        for batch in batches:
            await repository.insert_many(OFFSET, batch)
        for filters in FILTERS:
            for workspace in ("w1", "w2"):
                wanted = _wanted(logged, workspace, filters)
                for limit in (13, 250):
                    pages, after = [], 0
                    while True:
                        rows, more = await repository.list(workspace, filters, limit, after)
                        pages += [r.request_id for r in rows]
                        assert all(r.workspace_id == workspace for r in rows)
                        if not more:
                            break
                        after = rows[-1].seq
                    assert pages == wanted, (filters, workspace, limit)
                    back, before = [], None
                    while True:
                        rows, more = await repository.list(
                            workspace, filters, limit, newest_first=True, before_seq=before
                        )
                        back += [r.request_id for r in rows]
                        if not more:
                            break
                        before = rows[-1].seq
                    assert back == wanted[::-1], (filters, workspace, limit)

    _run(fresh_database(tmp_path, "kg_log_chunks"), scenario)


def test_a_batch_larger_than_a_chunk_is_split_and_kept_whole(tmp_path: Path) -> None:
    rng = random.Random(3)
    entries = [_entry(i, rng) for i in range(MAX_CHUNK * 2 + 5)]

    async def scenario(repository: RequestLogRepository) -> list[str]:
        await repository.insert_many(OFFSET, {"w": entries})
        rows, more = await repository.list("w", RequestLogFilter(), len(entries) + 10)
        assert not more
        return [r.request_id for r in rows]

    assert _run(fresh_database(tmp_path, "kg_log_split"), scenario) == [
        e[7].decode() for e in entries
    ]


def test_pruning_holds_both_limits_exactly_and_keeps_cursors(tmp_path: Path) -> None:
    rng = random.Random(5)
    now = datetime.now(UTC).timestamp()
    old = [_entry(i, rng) for i in range(10)]
    for i, entry in enumerate(old):  # 10 entries: two days and an hour old, then an hour old
        entry[0] = now - (2 * 86_400 if i < 6 else 0) - 3600 - OFFSET
    fresh = [_entry(10 + i, rng) for i in range(10)]
    for entry in fresh:
        entry[0] = now - OFFSET

    async def scenario(repository: RequestLogRepository) -> dict[str, Any]:
        await repository.insert_many(OFFSET, {"w": old})  # one chunk straddling a day
        await repository.insert_many(OFFSET, {"w": fresh})
        first, _ = await repository.list("w", RequestLogFilter(), 8)  # r0 … r7
        removed_by_age = await repository.prune(timedelta(days=1), 1_000_000)
        after_age, _ = await repository.list("w", RequestLogFilter(), 100)
        resumed, _ = await repository.list("w", RequestLogFilter(), 100, first[-1].seq)
        removed_by_cap = await repository.prune(timedelta(days=1), 5)
        after_cap, _ = await repository.list("w", RequestLogFilter(), 100)
        removed_none = await repository.prune(timedelta(days=1), 5)
        return {
            "age": removed_by_age,
            "after_age": [r.request_id for r in after_age],
            "resumed": [r.request_id for r in resumed],
            "cap": removed_by_cap,
            "after_cap": [r.request_id for r in after_cap],
            "none": removed_none,
        }

    got = _run(fresh_database(tmp_path, "kg_log_prune_exact"), scenario)
    assert got["age"] == 6
    assert got["after_age"] == [f"r{i}" for i in range(6, 20)]
    assert got["resumed"] == [f"r{i}" for i in range(8, 20)], "a cursor from before pruning"
    assert got["cap"] == 9
    assert got["after_cap"] == [f"r{i}" for i in range(15, 20)]
    assert got["none"] == 0


def test_last_used_is_each_connections_newest_request(tmp_path: Path) -> None:
    rng = random.Random(9)
    entries = [_entry(i, rng) for i in range(50)]
    others = [_entry(i + 50, rng, "other") for i in range(50)]

    async def scenario(repository: RequestLogRepository) -> dict[str, datetime]:
        await repository.insert_many(OFFSET, {"w": entries[:30]})
        await repository.insert_many(OFFSET, {"w": entries[30:], "other": others})
        return await repository.last_used("w", ["c-1", "c%3", "c-9"])

    used = _run(fresh_database(tmp_path, "kg_log_last_used"), scenario)
    for connection in ("c-1", "c%3"):
        newest = max(_ended(e) for e in entries if e[6] == connection)
        assert abs(used[connection].timestamp() - newest) < 1e-5
    assert "c-9" not in used


def test_a_stored_entry_of_another_workspace_is_never_listed(tmp_path: Path) -> None:
    """Defence in depth: a chunk filed under one workspace shows only that workspace's
    entries, whatever else it holds."""
    rng = random.Random(2)
    mixed = [_entry(0, rng, "w"), _entry(1, rng, "intruder")]

    async def scenario(repository: RequestLogRepository) -> list[str]:
        await repository.insert_many(OFFSET, {"w": mixed})
        rows, _ = await repository.list("w", RequestLogFilter(), 10)
        return [r.request_id for r in rows]

    assert _run(fresh_database(tmp_path, "kg_log_mixed"), scenario) == ["r0"]


def test_sqlite_writes_checkpoint_through_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The SQLite appender never checkpoints on the loop; every few writes the engine does."""
    from keygate.store import request_logs

    monkeypatch.setattr(request_logs._SqliteAppender, "CHECKPOINT_BATCHES", 2)
    checkpoints: list[int] = []
    original = RequestLogRepository._checkpoint

    async def counted(self: RequestLogRepository) -> None:
        checkpoints.append(1)
        await original(self)

    monkeypatch.setattr(RequestLogRepository, "_checkpoint", counted)
    rng = random.Random(4)

    async def scenario(repository: RequestLogRepository) -> int:
        for i in range(5):
            await repository.insert_many(OFFSET, {"w": [_entry(i, rng)]})
        rows, _ = await repository.list("w", RequestLogFilter(), 10)
        return len(rows)

    assert _run(fresh_database(tmp_path, "kg_log_checkpoint"), scenario) == 5
    assert checkpoints == ([] if PG_URL else [1, 1]), "after the 2nd and the 4th write"
    assert "checkpoint failed" not in caplog.text
