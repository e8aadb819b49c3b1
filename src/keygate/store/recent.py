"""Newest-first reads of the record, for the dashboard: a person looks at what happened last.

The API's listings (`RequestLogRepository.list`, `EventRepository.list`) page oldest first,
for a client that follows along; these take the same filters and page backwards from a
position instead. Same rows, same records, same workspace confinement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select

from keygate.store.database import Database
from keygate.store.events import EventFilter, EventRecord
from keygate.store.events import _record as event_record
from keygate.store.request_logs import RequestLogFilter, RequestLogRecord
from keygate.store.request_logs import _record as log_record
from keygate.store.schema import EventRow, RequestLogRow


async def recent_requests(
    db: Database,
    workspace_id: str,
    filters: RequestLogFilter,
    limit: int,
    before_seq: int | None = None,
) -> tuple[list[RequestLogRecord], bool]:
    """A workspace's logged requests, newest first (before a position); whether older follow."""
    query = select(RequestLogRow).where(RequestLogRow.workspace_id == workspace_id)
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
    query = query.order_by(RequestLogRow.seq.desc()).limit(limit + 1)
    async with db.read() as session:
        rows = [log_record(r) for r in await session.scalars(query)]
    return rows[:limit], len(rows) > limit


async def recent_events(
    db: Database,
    workspace_id: str,
    filters: EventFilter,
    limit: int,
    before_seq: int | None = None,
) -> tuple[list[EventRecord], bool]:
    """A workspace's audit events (and the deployment-wide ones), newest first."""
    query = select(EventRow).where(
        or_(EventRow.workspace_id == workspace_id, EventRow.workspace_id.is_(None))
    )
    if before_seq is not None:
        query = query.where(EventRow.seq < before_seq)
    if filters.type is not None:
        query = query.where(EventRow.type == filters.type)
    if filters.connection_id is not None:
        query = query.where(EventRow.connection_id == filters.connection_id)
    if filters.since is not None:
        query = query.where(EventRow.at >= filters.since)
    query = query.order_by(EventRow.seq.desc()).limit(limit + 1)
    async with db.read() as session:
        rows = [event_record(r) for r in await session.scalars(query)]
    return rows[:limit], len(rows) > limit


async def last_used(
    db: Database, workspace_id: str, connection_ids: Sequence[str]
) -> dict[str, datetime]:
    """When each connection last carried a logged gateway request (within the log's
    retention); connections without one are missing."""
    if not connection_ids:
        return {}
    query = (
        select(RequestLogRow.connection_id, func.max(RequestLogRow.at))
        .where(
            RequestLogRow.workspace_id == workspace_id,
            RequestLogRow.connection_id.in_(connection_ids),
        )
        .group_by(RequestLogRow.connection_id)
    )
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return {row[0]: row[1] for row in rows if row[0] is not None and row[1] is not None}
