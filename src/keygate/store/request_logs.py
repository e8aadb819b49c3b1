"""The request log in the store: each batch of gateway requests kept as one chunk per workspace
(`RequestLogChunkRow`), read page by page with filters, and pruned by age and by row count.

A request's position — its chunk's `seq` and its index in the chunk, `seq << INDEX_BITS | index`
— orders the log (oldest first) and is what the listings' cursors stand for. A filtered read
asks the database only for chunks whose summary columns can match (their apps, connections,
status classes and time span), then decodes those and keeps the entries that do match.

What a batch costs is most of what this module is about: see `pack` and `_SqliteAppender`.
"""

from __future__ import annotations

import logging
import sqlite3
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
from sqlalchemy import ColumnElement, Dialect, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from keygate.store.database import Database
from keygate.store.schema import RequestLogChunkRow, UTCDateTime, utcnow

log = logging.getLogger("keygate.store")

Entry = Sequence[Any]
"""One stored request: the gateway's own request-log tuple (`keygate.gateway.request_log.Entry`)
with its query string replaced by the query's parameter *names* (a list; b"" when it had none):
(perf_counter at start, seconds, method, app, path as sent (bytes, or str), status, connection
id, request id (bytes, or str), query names, (workspace id, API key prefix), by Keygate). The
chunk's `offset` turns a perf_counter reading into a wall-clock time."""

STARTED, SECONDS, METHOD, APP, PATH, STATUS, CONNECTION, REQUEST_ID, QUERY, CALLER, BY_KEYGATE = (
    range(11)
)

INDEX_BITS = 16
MAX_CHUNK = 4096
"""Entries per chunk at most (a bigger batch is split); below 1 << INDEX_BITS."""

_FORMAT = 1
_MAX_METHOD, _MAX_PATH = 16, 2048  # what a record shows of the two fields a caller sends
_FIRST_PAGE, _MAX_PAGE = 2, 64  # chunks fetched per read, doubling: most pages need one


@dataclass(frozen=True, slots=True)
class Chunk:
    """A chunk's contents: wall-clock time = `offset` + an entry's start + its seconds; None
    stands where pruning removed an entry (so the positions of the others never move)."""

    offset: float
    entries: list[Entry | None]

    def live(self) -> list[Entry]:
        """The entries pruning has left."""
        return [entry for entry in self.entries if entry is not None]

    def ended(self, entry: Entry) -> float:
        """When `entry` ended, in seconds since the epoch."""
        return float(self.offset + entry[STARTED] + entry[SECONDS])


def pack(chunk: Chunk) -> bytes:
    """A chunk's `data`: MessagePack (it takes the entries' bytes and tuples as they are, so no
    entry is rebuilt in Python: 0.3 µs an entry where converting them for JSON cost 0.8 and
    `json.dumps` another 0.8), then zlib level 1 (0.2 µs an entry, about a twentieth of the
    bytes to write and keep)."""
    return zlib.compress(msgpack.packb((_FORMAT, chunk.offset, chunk.entries)), 1)


def unpack(data: bytes) -> Chunk:
    """The chunk a `pack` made."""
    _format, offset, entries = msgpack.unpackb(zlib.decompress(data))
    return Chunk(offset, entries)


def instant(seconds: float) -> datetime:
    """An aware UTC datetime from seconds since the epoch."""
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True)
class RequestLogRecord:
    """One logged gateway request; `seq` is its position in the log."""

    seq: int
    workspace_id: str
    at: datetime
    app: str
    method: str
    path: str
    query_names: list[str]
    status: int
    latency_ms: float
    connection_id: str | None
    key_prefix: str
    request_id: str
    source: str


@dataclass(frozen=True, slots=True)
class RequestLogFilter:
    """Optional, combinable filters of a request-log listing (`status_class` 4: 4xx)."""

    app: str | None = None
    connection_id: str | None = None
    status_class: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def summary(chunk: Chunk) -> dict[str, Any]:
    """A chunk row's summary columns (at least one entry must be live)."""
    live = chunk.live()
    ends = [entry[STARTED] + entry[SECONDS] for entry in live]
    connections = sorted({entry[CONNECTION] for entry in live} - {None, ""})
    statuses = 0
    for status_class in {entry[STATUS] // 100 for entry in live}:
        statuses |= 1 << status_class
    return {
        "first_at": instant(chunk.offset + min(ends)),
        "last_at": instant(chunk.offset + max(ends)),
        "rows": len(live),
        "apps": f" {' '.join(sorted({entry[APP] for entry in live}))} ",
        "connections": f" {' '.join(connections)} " if connections else "",
        "statuses": statuses,
    }


def chunk_columns(chunk: Chunk) -> dict[str, Any]:
    """A chunk row's columns but `seq` and `workspace_id`."""
    return {**summary(chunk), "data": pack(chunk)}


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _record(workspace_id: str, position: int, chunk: Chunk, entry: Entry) -> RequestLogRecord:
    return RequestLogRecord(
        position,
        workspace_id,
        instant(chunk.ended(entry)),
        entry[APP],
        _text(entry[METHOD])[:_MAX_METHOD],
        _text(entry[PATH])[:_MAX_PATH],
        list(entry[QUERY] or []),
        entry[STATUS],
        round(entry[SECONDS] * 1000, 2),
        entry[CONNECTION] or None,
        entry[CALLER][1],
        _text(entry[REQUEST_ID]),
        "keygate" if entry[BY_KEYGATE] else "upstream",
    )


class _Match:
    """A filter twice over: the chunks that may hold a match (SQL), and the entries that do."""

    def __init__(self, workspace_id: str, filters: RequestLogFilter) -> None:
        self.workspace_id = workspace_id
        self.app = filters.app
        self.connection_id = filters.connection_id
        self.status_class = filters.status_class
        self.since = None if filters.since is None else filters.since.timestamp()
        self.until = None if filters.until is None else filters.until.timestamp()
        chunk = RequestLogChunkRow
        self.chunks: list[ColumnElement[bool]] = [chunk.workspace_id == workspace_id]
        if filters.app is not None:
            self.chunks.append(chunk.apps.contains(f" {filters.app} ", autoescape=True))
        if filters.connection_id is not None:
            needle = f" {filters.connection_id} "
            self.chunks.append(chunk.connections.contains(needle, autoescape=True))
        if filters.status_class is not None:
            self.chunks.append(chunk.statuses.op("&")(1 << filters.status_class) != 0)
        if filters.since is not None:
            self.chunks.append(chunk.last_at >= filters.since)
        if filters.until is not None:
            self.chunks.append(chunk.first_at < filters.until)

    def __call__(self, chunk: Chunk, entry: Entry) -> bool:
        if self.since is not None or self.until is not None:
            ended = chunk.ended(entry)
            if (self.since is not None and ended < self.since) or (
                self.until is not None and ended >= self.until
            ):
                return False
        return (
            entry[CALLER][0] == self.workspace_id
            and (self.app is None or entry[APP] == self.app)
            and (self.connection_id is None or entry[CONNECTION] == self.connection_id)
            and (self.status_class is None or entry[STATUS] // 100 == self.status_class)
        )


class RequestLogRepository:
    """Writes, lists and prunes the request log."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._appender: _SqliteAppender | None = None

    async def insert_many(self, offset: float, batches: Mapping[str, Sequence[Entry]]) -> None:
        """Store each workspace's entries (oldest first; `offset` makes their times wall-clock
        times) as chunks, in one transaction (no cache-epoch bump: nothing cached depends on
        the log)."""
        chunks = [
            (workspace_id, Chunk(offset, list(entries[start : start + MAX_CHUNK])))
            for workspace_id, entries in batches.items()
            for start in range(0, len(entries), MAX_CHUNK)
        ]
        if not chunks:
            return
        rows = [{"workspace_id": ws, **chunk_columns(chunk)} for ws, chunk in chunks]
        path = self._db.engine.url.database
        if self._db.dialect == "sqlite" and path and path != ":memory:":
            if self._appender is None:
                self._appender = _SqliteAppender(path, self._db.engine.dialect)
            if self._appender.append(rows):
                if self._appender.checkpoint_due():
                    await self._checkpoint()
                return
        async with self._db.sessions() as session, session.begin():
            connection = await session.connection()
            await connection.execute(insert(RequestLogChunkRow), rows)

    async def _checkpoint(self) -> None:
        # Through the engine: its connection runs in aiosqlite's thread, so a checkpoint's
        # copying and fsync never hold up the event loop. The batch is stored already: a
        # failed checkpoint is only said (the next one, or any write through the engine, does it).
        try:
            async with self._db.sessions() as session:
                await session.execute(text("PRAGMA wal_checkpoint(PASSIVE)"))
        except Exception:
            log.warning("request-log checkpoint failed", exc_info=True)

    def close(self) -> None:
        """Close the SQLite appender's connection, if one was opened."""
        if self._appender is not None:
            self._appender.close()
            self._appender = None

    async def list(
        self,
        workspace_id: str,
        filters: RequestLogFilter,
        limit: int,
        after_seq: int = 0,
        *,
        newest_first: bool = False,
        before_seq: int | None = None,
    ) -> tuple[list[RequestLogRecord], bool]:
        """A workspace's requests after a position, oldest first (the API's order), or newest
        first before a position (the dashboard's); also whether more follow."""
        chunk_row = RequestLogChunkRow
        match = _Match(workspace_id, filters)
        query = select(chunk_row.seq, chunk_row.data).where(*match.chunks)
        query = query.order_by(chunk_row.seq.desc() if newest_first else chunk_row.seq)
        low = after_seq >> INDEX_BITS  # the chunks still to read: low ≤ seq ≤ high
        high = None if before_seq is None else before_seq >> INDEX_BITS
        wanted = limit + 1
        found: list[RequestLogRecord] = []
        page = _FIRST_PAGE
        async with self._db.read() as session:
            while len(found) < wanted:
                bounded = query.where(chunk_row.seq >= low)
                if high is not None:
                    bounded = bounded.where(chunk_row.seq <= high)
                rows = (await session.execute(bounded.limit(page))).all()
                for seq, data in rows:
                    chunk = unpack(data)
                    indexes = range(len(chunk.entries))
                    for index in reversed(indexes) if newest_first else indexes:
                        entry = chunk.entries[index]
                        position = seq << INDEX_BITS | index
                        if entry is None or position <= after_seq:
                            continue
                        if before_seq is not None and position >= before_seq:
                            continue
                        if match(chunk, entry):
                            found.append(_record(workspace_id, position, chunk, entry))
                            if len(found) == wanted:
                                break
                    if len(found) == wanted:
                        break
                if len(rows) < page:
                    break
                if newest_first:
                    high = rows[-1][0] - 1
                else:
                    low = rows[-1][0] + 1
                page = min(page * 2, _MAX_PAGE)
        return found[:limit], len(found) > limit

    async def last_used(
        self, workspace_id: str, connection_ids: Iterable[str]
    ) -> dict[str, datetime]:
        """When each connection's newest logged request ended (within the log's retention, and
        to within a batch: processes' chunks interleave); connections without one are missing."""
        chunk_row = RequestLogChunkRow
        used: dict[str, datetime] = {}
        async with self._db.read() as session:
            for connection_id in set(connection_ids):
                data = await session.scalar(
                    select(chunk_row.data)
                    .where(
                        chunk_row.workspace_id == workspace_id,
                        chunk_row.connections.contains(f" {connection_id} ", autoescape=True),
                    )
                    .order_by(chunk_row.seq.desc())
                    .limit(1)
                )
                if data is None:
                    continue
                chunk = unpack(data)
                ends = [chunk.ended(e) for e in chunk.live() if e[CONNECTION] == connection_id]
                if ends:
                    used[connection_id] = instant(max(ends))
        return used

    async def prune(self, max_age: timedelta, max_rows: int) -> int:
        """Delete requests older than `max_age`, then the oldest beyond `max_rows`; how many.

        Whole chunks go where they can; in a chunk that straddles a limit the entries beyond it
        are replaced by None (the others keep their positions), so both limits hold exactly."""
        chunk_row = RequestLogChunkRow
        cutoff = utcnow() - max_age
        since = cutoff.timestamp()
        async with self._db.sessions() as session, session.begin():
            old = (chunk_row.first_at < cutoff, chunk_row.last_at < cutoff)
            removed = await _delete(session, *old)
            straddling = await session.execute(
                select(chunk_row.seq, chunk_row.data).where(chunk_row.first_at < cutoff)
            )
            for seq, data in straddling.all():
                chunk = unpack(data)
                kept = [
                    e if e is not None and chunk.ended(e) >= since else None for e in chunk.entries
                ]
                removed += await _rewrite(session, seq, Chunk(chunk.offset, kept))
            if max_rows >= 0:
                # The oldest chunk whose newer neighbours and itself hold more than the cap.
                total = func.sum(chunk_row.rows).over(order_by=chunk_row.seq.desc()).label("t")
                running = select(chunk_row.seq, total).subquery()
                boundary = (
                    await session.execute(
                        select(running.c.seq, running.c.t)
                        .where(running.c.t > max_rows)
                        .order_by(running.c.seq.desc())
                        .limit(1)
                    )
                ).first()
                if boundary is not None:
                    seq, over = boundary[0], boundary[1] - max_rows
                    removed += await _delete(session, chunk_row.seq < seq)
                    packed = await session.scalar(
                        select(chunk_row.data).where(chunk_row.seq == seq)
                    )
                    if packed is not None:
                        chunk = unpack(packed)
                        entries = list(chunk.entries)
                        for index, entry in enumerate(entries):  # its oldest `over` live ones go
                            if over == 0:
                                break
                            if entry is not None:
                                entries[index] = None
                                over -= 1
                        removed += await _rewrite(session, seq, Chunk(chunk.offset, entries))
        return removed


async def _delete(session: AsyncSession, *where: ColumnElement[bool]) -> int:
    """Delete the chunks `where` selects; how many entries they held."""
    chunk_row = RequestLogChunkRow
    held = await session.scalar(select(func.coalesce(func.sum(chunk_row.rows), 0)).where(*where))
    await session.execute(delete(chunk_row).where(*where))
    return int(held or 0)


async def _rewrite(session: AsyncSession, seq: int, chunk: Chunk) -> int:
    """Store chunk `seq` as `chunk`, or delete it if no entry is left; how many entries went."""
    chunk_row = RequestLogChunkRow
    held = int(await session.scalar(select(chunk_row.rows).where(chunk_row.seq == seq)) or 0)
    if chunk.live():
        columns = chunk_columns(chunk)
        await session.execute(update(chunk_row).where(chunk_row.seq == seq).values(**columns))
        return held - int(columns["rows"])
    await session.execute(delete(chunk_row).where(chunk_row.seq == seq))
    return held


class _SqliteAppender:
    """Appends a SQLite store's chunks through a plain `sqlite3` connection of its own, on the
    event loop, in one short transaction per batch.

    Measured (`make bench`, `--only main`, one worker pinned to its core): through the async
    engine a batch cost about 1 ms of CPU whatever its size (ten round trips to aiosqlite's
    thread, each a futex wake and a self-pipe write); one hop to a thread of its own per batch
    still left Keygate/bare at 0.82 against 0.84 for this, as the thread competes for the GIL
    and the core. The loop is held only for the insert: this connection never waits for a lock
    (`busy_timeout` 0: a batch that finds the database locked goes through the engine, which
    waits in its thread) and never checkpoints (`wal_autocheckpoint` 0: every
    `CHECKPOINT_BATCHES` batches a passive checkpoint runs through the engine instead).
    """

    CHECKPOINT_BATCHES = 200
    _INSERT = (
        "INSERT INTO request_log_chunks "
        "(workspace_id, first_at, last_at, rows, apps, connections, statuses, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._batches = 0
        # The engine's own way of storing a time, so its queries compare like with like.
        stored = UTCDateTime().bind_processor(dialect)
        self._time = stored if stored is not None else str

    def append(self, rows: list[dict[str, Any]]) -> bool:
        """Insert `rows`; False, with nothing written, if the database is locked."""
        connection = self._connection
        if connection is None:
            connection = sqlite3.connect(self._path, isolation_level=None)
            connection.execute("PRAGMA busy_timeout=0")
            connection.execute("PRAGMA wal_autocheckpoint=0")
            connection.execute("PRAGMA synchronous=NORMAL")  # as the engine's: WAL, no fsync
            self._connection = connection
        values = [
            (
                row["workspace_id"],
                self._time(row["first_at"]),
                self._time(row["last_at"]),
                row["rows"],
                row["apps"],
                row["connections"],
                row["statuses"],
                row["data"],
            )
            for row in rows
        ]
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # locked by another writer
            return False
        try:
            connection.executemany(self._INSERT, values)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        self._batches += 1
        return True

    def checkpoint_due(self) -> bool:
        """Whether enough batches went by for a checkpoint (then counting starts again)."""
        if self._batches < self.CHECKPOINT_BATCHES:
            return False
        self._batches = 0
        return True

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
