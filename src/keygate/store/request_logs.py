"""The request log in the store: batches of gateway requests written off the hot path, read
page by page, and pruned by age and by row count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select

from keygate.store.database import Database
from keygate.store.schema import RequestLogRow, utcnow


@dataclass(frozen=True, slots=True)
class RequestLogRecord:
    """One logged gateway request."""

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


def _record(row: RequestLogRow) -> RequestLogRecord:
    return RequestLogRecord(
        row.seq,
        row.workspace_id,
        row.at,
        row.app,
        row.method,
        row.path,
        list(row.query_names or []),
        row.status,
        row.latency_ms,
        row.connection_id,
        row.key_prefix,
        row.request_id,
        row.source,
    )


class RequestLogRepository:
    """Writes, lists and prunes the request log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store a batch in one statement (no cache-epoch bump: nothing cached depends on it).

        Each row has the `request_logs` columns but `seq`."""
        if not rows:
            return
        # A Core executemany on a plain connection: no ORM unit of work for rows never read
        # back (about a third of the CPU a session's bulk insert spends per row).
        async with self._db.sessions() as session, session.begin():
            connection = await session.connection()
            await connection.execute(insert(RequestLogRow), list(rows))

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
        """A workspace's requests after a cursor, oldest first (the API's order), or newest
        first before a position (the dashboard's); also whether more follow."""
        query = select(RequestLogRow).where(
            RequestLogRow.workspace_id == workspace_id, RequestLogRow.seq > after_seq
        )
        if before_seq is not None:
            query = query.where(RequestLogRow.seq < before_seq)
        if filters.app is not None:
            query = query.where(RequestLogRow.app == filters.app)
        if filters.connection_id is not None:
            query = query.where(RequestLogRow.connection_id == filters.connection_id)
        if filters.status_class is not None:
            low = filters.status_class * 100
            query = query.where(RequestLogRow.status >= low, RequestLogRow.status < low + 100)
        if filters.since is not None:
            query = query.where(RequestLogRow.at >= filters.since)
        if filters.until is not None:
            query = query.where(RequestLogRow.at < filters.until)
        order = RequestLogRow.seq.desc() if newest_first else RequestLogRow.seq
        query = query.order_by(order).limit(limit + 1)
        async with self._db.read() as session:
            rows = [_record(r) for r in await session.scalars(query)]
        return rows[:limit], len(rows) > limit

    async def prune(self, max_age: timedelta, max_rows: int) -> int:
        """Delete rows older than `max_age`, then the oldest beyond `max_rows`; how many."""
        async with self._db.sessions() as session, session.begin():
            old = await session.execute(
                delete(RequestLogRow).where(RequestLogRow.at < utcnow() - max_age)
            )
            removed = int(getattr(old, "rowcount", 0) or 0)
            newest = await session.scalar(select(func.max(RequestLogRow.seq)))
            if newest is not None and max_rows >= 0:
                extra = await session.execute(
                    delete(RequestLogRow).where(RequestLogRow.seq <= newest - max_rows)
                )
                removed += int(getattr(extra, "rowcount", 0) or 0)
        return removed
