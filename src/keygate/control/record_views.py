"""How the request log, audit events and webhooks look on the wire, and the query filters
their listings share (status class, ISO-8601 times)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from keygate.control.views import iso
from keygate.errors import BadRequest
from keygate.store.events import EventRecord
from keygate.store.request_logs import RequestLogRecord
from keygate.store.webhooks import DeliveryRecord, EndpointRecord

_STATUS_CLASS = re.compile(r"[1-5][xX][xX]")


def parse_status_class(value: str | None) -> int | None:
    """`4xx` → 4; None or empty: no filter; anything else is a 400 naming `status`."""
    if not value:
        return None
    if not _STATUS_CLASS.fullmatch(value):
        raise BadRequest(
            f"status must be a status class: 1xx, 2xx, 3xx, 4xx or 5xx, not {value!r}."
        )
    return int(value[0])


def parse_time(name: str, value: str | None) -> datetime | None:
    """An ISO-8601 time (`2026-12-01T10:00:00Z`; no zone means UTC), None for None; anything
    else is a 400 naming `name`."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        raise BadRequest(
            f"{name} must be an ISO-8601 time such as 2026-12-01T10:00:00Z, not {value!r}."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def log_view(record: RequestLogRecord) -> dict[str, Any]:
    """One request of the request log."""
    return {
        "request_id": record.request_id,
        "time": iso(record.at),
        "app": record.app,
        "method": record.method,
        "path": record.path,
        "query_params": record.query_names,
        "status": record.status,
        "status_source": record.source,
        "latency_ms": record.latency_ms,
        "connection_id": record.connection_id,
        "api_key_prefix": record.key_prefix,
    }


def event_view(record: EventRecord) -> dict[str, Any]:
    """One audit event."""
    return {
        "event_id": record.id,
        "type": record.type,
        "time": iso(record.at),
        "actor": record.actor,
        "connection_id": record.connection_id,
        "data": record.data,
    }


def webhook_view(record: EndpointRecord, secret: str | None = None) -> dict[str, Any]:
    """A webhook endpoint; its secret only in the answer that created it."""
    view: dict[str, Any] = {
        "webhook_id": record.id,
        "url": record.url,
        "event_types": record.event_types,
        "status": record.status,
        "disabled_reason": record.disabled_reason,
        "creation_time": iso(record.created_at),
    }
    if secret is not None:
        view["secret"] = secret
    return view


def delivery_view(record: DeliveryRecord) -> dict[str, Any]:
    """A delivery (its `delivery_id` is the `webhook-id` header) with its attempts."""
    return {
        "delivery_id": record.id,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "status": record.status,
        "attempts": [
            {
                "time": iso(a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in record.history
        ],
        "next_attempt_time": iso(record.next_attempt_at) if record.status == "pending" else None,
        "creation_time": iso(record.created_at),
        "delivered_time": iso(record.delivered_at) if record.delivered_at else None,
    }
