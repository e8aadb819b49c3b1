"""`/logs` and `/events`: the caller's workspace's request log and audit events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from keygate.control.auth import CallerDep
from keygate.control.deps import EventsDep, RequestLogsDep
from keygate.control.openapi import error_responses
from keygate.control.record_views import event_view, log_view, parse_status_class, parse_time
from keygate.control.views import decode_cursor, encode_cursor
from keygate.errors import BadRequest
from keygate.store.events import EventFilter, EventType
from keygate.store.request_logs import RequestLogFilter

router = APIRouter(tags=["record"])


@router.get(
    "/logs",
    summary="List gateway requests, oldest first",
    response_model=None,
    responses=error_responses(400, 401, 503),
)
async def list_logs(
    logs: RequestLogsDep,
    caller: CallerDep,
    app: str | None = None,
    connection: str | None = None,
    status: Annotated[str | None, Query(description="A status class: 2xx, 4xx, 5xx…")] = None,
    since: Annotated[str | None, Query(description="ISO-8601; requests at or after")] = None,
    until: Annotated[str | None, Query(description="ISO-8601; requests before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The workspace's gateway requests (query parameter names only, never values)."""
    filters = RequestLogFilter(
        app=app,
        connection_id=connection,
        status_class=parse_status_class(status),
        since=parse_time("since", since),
        until=parse_time("until", until),
    )
    after = decode_cursor(cursor) if cursor else 0
    rows, more = await logs.list(caller.workspace_id, filters, limit, after)
    return {
        "logs": [log_view(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1].seq) if more and rows else None,
        "resume_cursor": _resume(rows[-1].seq if rows else None, cursor),
    }


@router.get(
    "/events",
    summary="List audit events, oldest first",
    response_model=None,
    responses=error_responses(400, 401, 503),
)
async def list_events(
    events: EventsDep,
    caller: CallerDep,
    type: Annotated[str | None, Query(description="An event type, e.g. connection.created")] = None,
    connection: str | None = None,
    since: Annotated[str | None, Query(description="ISO-8601; events at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The workspace's audit events, and the deployment-wide ones (an app's OAuth client)."""
    if type is not None and type not in EventType._value2member_map_:
        known = ", ".join(t.value for t in EventType)
        raise BadRequest(f"type must be one of {known}; got {type!r}.")
    filters = EventFilter(type=type, connection_id=connection, since=parse_time("since", since))
    after = decode_cursor(cursor) if cursor else 0
    rows, more = await events.list(caller.workspace_id, filters, limit, after)
    return {
        "events": [event_view(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1].seq) if more and rows else None,
        "resume_cursor": _resume(rows[-1].seq if rows else None, cursor),
    }


def _resume(last_seq: int | None, cursor: str | None) -> str:
    """The cursor to ask with later for what comes after this page (`--follow` uses it):
    after its last item, or where it started if it was empty."""
    if last_seq is not None:
        return encode_cursor(last_seq)
    return cursor or encode_cursor(0)
