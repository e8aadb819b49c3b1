"""Audit events, and the webhook outbox rows written in the same transaction.

An event is recorded inside the transaction of the change it describes (`record_event` takes
that transaction's session), so a committed change always has its event and an event always
has its outbox rows: one `webhook_deliveries` row per enabled endpoint subscribed to its type.
The delivery worker (`keygate.webhooks.worker`) sends those rows; nothing here talks HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from keygate.store.database import Database
from keygate.store.schema import EventRow, WebhookDeliveryRow, WebhookEndpointRow, utcnow


class EventType(StrEnum):
    """Every audit event type (also the webhook event types)."""

    CONNECTION_CREATED = "connection.created"
    CONNECTION_ACTIVATED = "connection.activated"
    CONNECTION_FAILED = "connection.failed"
    CONNECTION_REFRESHED = "connection.refreshed"
    CONNECTION_REFRESH_FAILED = "connection.refresh_failed"
    CONNECTION_REAUTHORIZED = "connection.reauthorized"
    CONNECTION_DELETED = "connection.deleted"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    APP_CLIENT_CONFIGURED = "app.client_configured"


OPERATOR = "operator"
"""The actor of a change made with the `keygate` CLI on the server (no API key)."""
KEYGATE = "keygate"
"""The actor of a change Keygate made itself (a token refresh, a connect page finishing)."""


def key_actor(prefix: str) -> str:
    """The actor of a change made with an API key: its display prefix."""
    return f"key:{prefix}"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An audit event as the API shows it."""

    seq: int
    id: str
    workspace_id: str | None
    type: str
    at: datetime
    actor: str
    connection_id: str | None
    data: dict[str, Any]


def _record(row: EventRow) -> EventRecord:
    return EventRecord(
        row.seq,
        row.id,
        row.workspace_id,
        row.type,
        row.at,
        row.actor,
        row.connection_id,
        dict(row.data or {}),
    )


def webhook_payload(event: EventRecord) -> str:
    """The JSON body every delivery of the event carries (Standard Webhooks' `type`,
    `timestamp`, `data` envelope)."""
    data: dict[str, Any] = {"event_id": event.id, "actor": event.actor, **event.data}
    if event.connection_id is not None:
        data["connection_id"] = event.connection_id
    body = {
        "type": event.type,
        "timestamp": event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": data,
    }
    return orjson.dumps(body).decode()


async def record_event(
    session: AsyncSession,
    *,
    workspace_id: str | None,
    type: EventType,
    actor: str,
    connection_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> EventRecord:
    """Add an event and its outbox rows to the session's transaction (ids only, never a
    secret; `workspace_id` None for a deployment-wide event)."""
    now = utcnow()
    row = EventRow(
        id="evt_" + uuid.uuid4().hex,
        workspace_id=workspace_id,
        type=type.value,
        at=now,
        actor=actor,
        connection_id=connection_id,
        data=data or {},
    )
    session.add(row)
    await session.flush()
    event = _record(row)
    endpoints = select(WebhookEndpointRow.id, WebhookEndpointRow.event_types).where(
        WebhookEndpointRow.status == "enabled"
    )
    if workspace_id is not None:
        endpoints = endpoints.where(WebhookEndpointRow.workspace_id == workspace_id)
    payload: str | None = None
    for endpoint_id, types in (await session.execute(endpoints)).all():
        if type.value not in types:
            continue
        payload = payload or webhook_payload(event)
        session.add(
            WebhookDeliveryRow(
                id="msg_" + uuid.uuid4().hex,
                endpoint_id=endpoint_id,
                event_id=event.id,
                event_type=event.type,
                payload=payload,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                delivered_at=None,
            )
        )
    return event


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Optional, combinable filters of an event listing."""

    type: str | None = None
    connection_id: str | None = None
    since: datetime | None = None


class EventRepository:
    """Reads the audit events of a workspace (they are written by `record_event`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        workspace_id: str | None,
        type: EventType,
        actor: str,
        connection_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> EventRecord:
        """Record an event in a transaction of its own (for changes that are not stored)."""
        async with self._db.sessions() as session, session.begin():
            return await record_event(
                session,
                workspace_id=workspace_id,
                type=type,
                actor=actor,
                connection_id=connection_id,
                data=data,
            )

    async def prune(self, max_age: timedelta) -> int:
        """Delete events older than `max_age`; how many."""
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(delete(EventRow).where(EventRow.at < utcnow() - max_age))
        return int(getattr(result, "rowcount", 0) or 0)

    async def list(
        self,
        workspace_id: str,
        filters: EventFilter,
        limit: int,
        after_seq: int = 0,
        *,
        newest_first: bool = False,
        before_seq: int | None = None,
    ) -> tuple[list[EventRecord], bool]:
        """A workspace's events (and the deployment-wide ones) after a cursor, oldest first
        (the API's order), or newest first before a position (the dashboard's); also whether
        more follow."""
        query = select(EventRow).where(
            EventRow.seq > after_seq,
            or_(EventRow.workspace_id == workspace_id, EventRow.workspace_id.is_(None)),
        )
        if before_seq is not None:
            query = query.where(EventRow.seq < before_seq)
        if filters.type is not None:
            query = query.where(EventRow.type == filters.type)
        if filters.connection_id is not None:
            query = query.where(EventRow.connection_id == filters.connection_id)
        if filters.since is not None:
            query = query.where(EventRow.at >= filters.since)
        order = EventRow.seq.desc() if newest_first else EventRow.seq
        query = query.order_by(order).limit(limit + 1)
        async with self._db.read() as session:
            rows = [_record(r) for r in await session.scalars(query)]
        return rows[:limit], len(rows) > limit
