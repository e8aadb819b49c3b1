"""Newest-first reads of the record, for the dashboard: a person looks at what happened last.

The API's listings (`RequestLogRepository.list`, `EventRepository.list`) page oldest first,
for a client that follows along; these take the same filters and page backwards from a
position instead. Same rows, same records, same workspace confinement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from keygate.store.database import Database
from keygate.store.events import EventFilter, EventRecord, EventRepository
from keygate.store.request_logs import RequestLogFilter, RequestLogRecord, RequestLogRepository


async def recent_requests(
    db: Database,
    workspace_id: str,
    filters: RequestLogFilter,
    limit: int,
    before_seq: int | None = None,
) -> tuple[list[RequestLogRecord], bool]:
    """A workspace's logged requests, newest first (before a position); whether older follow."""
    return await RequestLogRepository(db).list(
        workspace_id, filters, limit, newest_first=True, before_seq=before_seq
    )


async def recent_events(
    db: Database,
    workspace_id: str,
    filters: EventFilter,
    limit: int,
    before_seq: int | None = None,
) -> tuple[list[EventRecord], bool]:
    """A workspace's audit events (and the deployment-wide ones), newest first."""
    return await EventRepository(db).list(
        workspace_id, filters, limit, newest_first=True, before_seq=before_seq
    )


async def last_used(
    db: Database, workspace_id: str, connection_ids: Sequence[str]
) -> dict[str, datetime]:
    """When each connection last carried a logged gateway request (within the log's
    retention); connections without one are missing."""
    return await RequestLogRepository(db).last_used(workspace_id, connection_ids)
