"""The request log and audit events views, newest first, with the filters of `/logs` and
`/events`; and the pieces of them a connection's page shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from keygate.control.deps import AppsDep, DatabaseDep
from keygate.control.record_views import parse_status_class, parse_time
from keygate.control.views import decode_cursor, encode_cursor
from keygate.dashboard.guard import ViewerDep
from keygate.dashboard.render import page
from keygate.errors import BadRequest, InvalidCursor
from keygate.store.events import EventFilter, EventType
from keygate.store.reads import is_uuid
from keygate.store.recent import recent_events, recent_requests
from keygate.store.request_logs import RequestLogFilter

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
STATUS_CLASSES = ["2xx", "3xx", "4xx", "5xx"]
EVENT_TYPES = [t.value for t in EventType]


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters a view was asked for, as given (to refill the form and build links)."""

    values: dict[str, str]

    def get(self, name: str) -> str:
        """One filter's value ('' when not given)."""
        return self.values.get(name, "")

    def query(self, **extra: str) -> str:
        """The filters (and `extra`) as a query string: nothing secret is in it."""
        pairs = {**self.values, **extra}
        return urlencode({k: v for k, v in pairs.items() if v})


def _given(request: Request, names: tuple[str, ...]) -> Filters:
    params = request.query_params
    return Filters({n: params.get(n, "").strip()[:100] for n in names if params.get(n)})


def _before(request: Request) -> int | None:
    try:
        return decode_cursor(request.query_params["before"])
    except (KeyError, InvalidCursor):
        return None


def _time(value: str) -> Any:
    # A datetime-local input sends 2026-12-01T10:00 (no zone): read as UTC, as the API does.
    return parse_time("time", value) if value else None


@router.get("/ui/logs")
async def logs_page(
    request: Request, viewer: ViewerDep, database: DatabaseDep, apps: AppsDep
) -> Response:
    """The workspace's gateway requests, newest first."""
    given = _given(request, ("app", "connection", "status", "since", "until"))
    error = None
    rows: list[Any] = []
    more = False
    try:
        connection = given.get("connection")
        filters = RequestLogFilter(
            app=given.get("app") or None,
            connection_id=connection or None,
            status_class=parse_status_class(given.get("status")),
            since=_time(given.get("since")),
            until=_time(given.get("until")),
        )
        if connection and not is_uuid(connection):
            raise BadRequest("The connection filter must be a connection id.")
        rows, more = await recent_requests(
            database, viewer.workspace_id, filters, PAGE_SIZE, _before(request)
        )
    except BadRequest as exc:
        error = exc.message
    context = {
        "filters": given,
        "rows": rows,
        "older": given.query(before=encode_cursor(rows[-1].seq)) if more and rows else None,
        "apps": [apps[name] for name in sorted(apps)],
        "status_classes": STATUS_CLASSES,
        "error": error,
    }
    return page(request, "logs.html", viewer, context, 400 if error else 200, section="logs")


@router.get("/ui/events")
async def events_page(request: Request, viewer: ViewerDep, database: DatabaseDep) -> Response:
    """The workspace's audit events, newest first."""
    given = _given(request, ("type", "connection", "since"))
    error = None
    rows: list[Any] = []
    more = False
    try:
        kind, connection = given.get("type"), given.get("connection")
        if kind and kind not in EVENT_TYPES:
            raise BadRequest("Choose an event type from the list.")
        if connection and not is_uuid(connection):
            raise BadRequest("The connection filter must be a connection id.")
        filters = EventFilter(kind or None, connection or None, _time(given.get("since")))
        rows, more = await recent_events(
            database, viewer.workspace_id, filters, PAGE_SIZE, _before(request)
        )
    except BadRequest as exc:
        error = exc.message
    context = {
        "filters": given,
        "rows": rows,
        "older": given.query(before=encode_cursor(rows[-1].seq)) if more and rows else None,
        "event_types": EVENT_TYPES,
        "error": error,
    }
    return page(request, "events.html", viewer, context, 400 if error else 200, section="events")
