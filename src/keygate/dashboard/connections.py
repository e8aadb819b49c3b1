"""The connections pages: the table, one connection, a new one, and deleting one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import Method
from keygate.connect.tokens import connect_url
from keygate.control.deps import (
    Apps,
    AppsDep,
    CipherDep,
    ConnectionsDep,
    DatabaseDep,
    PublicUrlDep,
    ReadsDep,
    UpstreamDep,
)
from keygate.control.views import decode_cursor, encode_cursor
from keygate.crypto import Cipher
from keygate.dashboard.guard import CheckedFormDep, PageNotFound, ViewerDep, form_text
from keygate.dashboard.render import page
from keygate.dashboard.signin import redirect
from keygate.errors import InvalidCursor
from keygate.oauth.revoke import revoke_connection
from keygate.store.connections import ConnectionFilter, ConnectionRepository, TokenFacts
from keygate.store.database import Database
from keygate.store.events import EventFilter
from keygate.store.reads import is_uuid
from keygate.store.recent import last_used, recent_events, recent_requests
from keygate.store.records import ConnectionRecord, Status
from keygate.store.request_logs import RequestLogFilter

log = logging.getLogger("keygate.dashboard")
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
_SEARCH_SCAN = 5000  # rows a search looks through at most (the store has no text index)
RECENT = 20  # events and requests a connection's page shows
STATUSES = [Status.PENDING.value, Status.ACTIVE.value, Status.FAILED.value]


@dataclass(frozen=True, slots=True)
class Row:
    """A connection as the pages show it."""

    record: ConnectionRecord
    app_name: str
    token: TokenFacts | None
    last_used: datetime | None = None

    @property
    def pending(self) -> bool:
        """Whether the status may still change by itself (the page keeps asking)."""
        return self.record.status is Status.PENDING

    @property
    def last_error(self) -> str:
        """The connection's error, or its refresh trouble, in words."""
        if self.record.error_code:
            return f"{self.record.error_code}: {self.record.error_message or ''}".strip()
        if self.token is not None and self.token.refresh_failures:
            return f"{self.token.refresh_failures} token refresh(es) failed in a row"
        return ""


def _display(apps: Apps, app: str) -> str:
    configured = apps.get(app)
    return configured.spec.display_name if configured else app


async def _rows(
    connections: ConnectionRepository,
    database: Database,
    apps: Apps,
    records: list[ConnectionRecord],
) -> list[Row]:
    ids = [r.id for r in records]
    facts = await connections.token_facts(ids)
    used = await last_used(database, records[0].workspace_id, ids) if records else {}
    return [Row(r, _display(apps, r.app), facts.get(r.id), used.get(r.id)) for r in records]


def _matches(record: ConnectionRecord, apps: Apps, query: str) -> bool:
    haystack = " ".join(
        [record.id, record.app, _display(apps, record.app), record.method, str(record.metadata)]
    )
    return query.lower() in haystack.lower()


@dataclass(frozen=True, slots=True)
class Listing:
    """What the table shows: its filters, its rows and the cursor of the next page."""

    app: str
    status: str
    query: str
    rows: list[Row]
    next_cursor: str | None

    @property
    def polling(self) -> bool:
        """Whether a row is PENDING, so the table refreshes itself until none is."""
        return any(row.pending for row in self.rows)

    def params(self) -> str:
        """The filters as a query string (nothing secret in it)."""
        pairs = {"app": self.app, "status": self.status, "q": self.query}
        return urlencode({k: v for k, v in pairs.items() if v})


async def _listing(
    request: Request,
    connections: ConnectionRepository,
    database: Database,
    apps: Apps,
    workspace_id: str,
) -> Listing:
    params = request.query_params
    app = params.get("app", "") if params.get("app", "") in apps else ""
    status = params.get("status", "") if params.get("status", "") in STATUSES else ""
    query = params.get("q", "").strip()[:200]
    try:
        after = decode_cursor(params["cursor"]) if params.get("cursor") else 0
    except InvalidCursor:
        after = 0
    filters = ConnectionFilter(app or None, Status(status) if status else None)
    found: list[ConnectionRecord] = []
    scanned, has_next, done = 0, False, False
    while not done:
        batch, more = await connections.list(workspace_id, filters, PAGE_SIZE, after)
        scanned += len(batch)
        has_next, done = more, not more or scanned >= _SEARCH_SCAN
        for index, record in enumerate(batch):
            after = record.seq
            if not query or _matches(record, apps, query):
                found.append(record)
            if len(found) == PAGE_SIZE:
                has_next, done = more or index < len(batch) - 1, True
                break
    rows = await _rows(connections, database, apps, found)
    return Listing(app, status, query, rows, encode_cursor(after) if has_next else None)


@router.get("/ui/connections")
async def connections_page(
    request: Request,
    viewer: ViewerDep,
    connections: ConnectionsDep,
    database: DatabaseDep,
    apps: AppsDep,
) -> Response:
    """The table of the workspace's connections, with filters and search."""
    listing = await _listing(request, connections, database, apps, viewer.workspace_id)
    template = "_connection_table.html" if request.headers.get("hx-request") else "connections.html"
    context = {"listing": listing, "apps": _app_choices(apps), "statuses": STATUSES}
    return page(request, template, viewer, context, section="connections")


def _app_choices(apps: Apps) -> list[ConfiguredApp]:
    return [apps[name] for name in sorted(apps)]


async def _own(
    connections: ConnectionRepository, connection_id: str, workspace_id: str
) -> ConnectionRecord:
    """The viewer's connection with that id; PageNotFound for any other id."""
    if not is_uuid(connection_id):
        raise PageNotFound
    record = await connections.get(connection_id, workspace_id)
    if record is None:
        raise PageNotFound
    return record


def _detail_context(
    row: Row, apps: Apps, public_url: str, cipher: Cipher, just_created: bool
) -> dict[str, Any]:
    record = row.record
    configured = apps.get(record.app)
    return {
        "row": row,
        "app": configured,
        "link": connect_url(public_url, cipher, record.id),
        "just_created": just_created,
    }


@router.get("/ui/connections/new")
async def new_connection_page(request: Request, viewer: ViewerDep, apps: AppsDep) -> Response:
    """Pick an app and a method, and fill in the connection's parameters."""
    chosen = request.query_params.get("app", "")
    context = {
        "apps": _app_choices(apps),
        "chosen": chosen if chosen in apps else "",
        "error": None,
    }
    return page(request, "new_connection.html", viewer, context, section="new")


def _metadata(form_value: str) -> dict[str, str] | str:
    """`key=value` lines as metadata, or the message saying what is wrong."""
    metadata: dict[str, str] = {}
    for number, line in enumerate(form_value.splitlines(), start=1):
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            return f"Metadata line {number} is not of the form key=value."
        metadata[name.strip()[:100]] = value.strip()[:500]
    if len(metadata) > 50:
        return "Metadata may have at most 50 entries."
    return metadata


@router.post("/ui/connections")
async def create_connection(
    request: Request,
    viewer: ViewerDep,
    form: CheckedFormDep,
    connections: ConnectionsDep,
    apps: AppsDep,
) -> Response:
    """Create a PENDING connection and show its page, with the link to connect it."""
    app_name = form_text(form, "app", 63)
    method_name = form_text(form, "method", 16)
    configured = apps.get(app_name)

    def again(error: str) -> Response:
        context = {"apps": _app_choices(apps), "chosen": app_name, "error": error}
        return page(request, "new_connection.html", viewer, context, 400, section="new")

    if configured is None:
        return again("Choose an app from the catalog.")
    try:
        method = Method(method_name) if method_name else configured.spec.methods[0].type
    except ValueError:
        return again("Choose one of the app's methods.")
    if configured.spec.method(method) is None:
        return again(f"{configured.spec.display_name} does not support {method.value}.")
    metadata = _metadata(form_text(form, "metadata", 20_000))
    if isinstance(metadata, str):
        return again(metadata)
    scopes_text = form_text(form, "scopes", 5000)
    scopes = scopes_text.split() if scopes_text and method is Method.OAUTH2 else None
    record = await connections.create(
        viewer.workspace_id, app_name, method.value, dict(metadata), scopes, actor=viewer.actor
    )
    log.info("connection %s created from the dashboard (%s)", record.id, record.app)
    return redirect(f"/ui/connections/{record.id}?created=1")


@router.get("/ui/connections/{connection_id}")
async def connection_page(
    request: Request,
    connection_id: str,
    viewer: ViewerDep,
    connections: ConnectionsDep,
    database: DatabaseDep,
    apps: AppsDep,
    cipher: CipherDep,
    public_url: PublicUrlDep,
) -> Response:
    """One connection: its facts, link, audit events, recent requests and delete action."""
    record = await _own(connections, connection_id, viewer.workspace_id)
    row = (await _rows(connections, database, apps, [record]))[0]
    created = request.query_params.get("created") == "1"
    context = _detail_context(row, apps, public_url, cipher, created)
    context["events"], _ = await recent_events(
        database, viewer.workspace_id, EventFilter(connection_id=record.id), RECENT
    )
    context["requests"], _ = await recent_requests(
        database, viewer.workspace_id, RequestLogFilter(connection_id=record.id), RECENT
    )
    return page(request, "connection.html", viewer, context, section="connections")


@router.get("/ui/connections/{connection_id}/status")
async def connection_status(
    request: Request,
    connection_id: str,
    viewer: ViewerDep,
    connections: ConnectionsDep,
    database: DatabaseDep,
    apps: AppsDep,
) -> Response:
    """The status badge of one connection (htmx polls it while the connection is PENDING);
    once the status changed, htmx is told to reload the page, which then shows the rest of
    what changed (token expiry, error, the link's purpose)."""
    record = await _own(connections, connection_id, viewer.workspace_id)
    row = (await _rows(connections, database, apps, [record]))[0]
    answer = page(request, "_status.html", viewer, {"row": row, "poll_badge": True})
    if not row.pending and request.headers.get("hx-request"):
        answer.headers["HX-Refresh"] = "true"
    return answer


@router.post("/ui/connections/{connection_id}/delete")
async def delete_connection(
    connection_id: str,
    viewer: ViewerDep,
    form: CheckedFormDep,
    connections: ConnectionsDep,
    apps: AppsDep,
    reads: ReadsDep,
    upstream: UpstreamDep,
) -> Response:
    """Revoke upstream tokens where the provider can, then forget the connection."""
    record = await _own(connections, connection_id, viewer.workspace_id)
    await revoke_connection(record, apps.get(record.app), connections=connections, client=upstream)
    await connections.delete(record.id, actor=viewer.actor)
    reads.forget_connection(record.id)
    log.info("connection %s deleted from the dashboard (%s)", record.id, record.app)
    return redirect("/ui/connections?deleted=1")
