"""What the FastAPI routes are given: one small dependency per collaborator.

A route names only what it uses (`connections: ConnectionsDep`, `cipher: CipherDep`, ...), so
its signature says what it touches and a test can hand it small fakes. The composition code
(`KeygateApp.startup`) builds the collaborators once and sets them with `provide`; no route
sees the runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.crypto import Cipher
from keygate.gateway.metrics import GatewayMetrics
from keygate.store.connections import ConnectionRepository
from keygate.store.database import Database
from keygate.store.events import EventRepository
from keygate.store.keys import KeyRepository
from keygate.store.reads import CachedReads
from keygate.store.request_logs import RequestLogRepository
from keygate.store.sessions import SessionRepository
from keygate.store.webhooks import WebhookRepository

Apps = Mapping[str, ConfiguredApp]


@dataclass(frozen=True, slots=True, kw_only=True)
class Collaborators:
    """Everything a route of the FastAPI app may be given, set once at start-up."""

    connections: ConnectionRepository
    keys: KeyRepository
    sessions: SessionRepository
    cipher: Cipher
    reads: CachedReads
    current_apps: Callable[[], Apps]
    """The configured apps as they are now. A reload replaces the whole mapping (store and
    settings read again), so routes are given this getter's answer at request time, never a
    mapping kept from start-up."""
    upstream: Client
    database: Database
    metrics: GatewayMetrics
    public_url: str
    session_ttl_seconds: int
    ui_session_ttl_seconds: int
    request_logs: RequestLogRepository
    events: EventRepository
    webhooks: WebhookRepository
    check_destination: Callable[[str], Awaitable[None]]
    """Raises BadRequest unless a webhook URL is one deliveries may go to."""


def provide(api: FastAPI, collaborators: Collaborators) -> None:
    """Give the app's routes their collaborators (the composition code calls this once)."""
    api.state.collaborators = collaborators


def provided(api: FastAPI) -> Collaborators | None:
    """The app's collaborators, or None before start-up."""
    found: Collaborators | None = getattr(api.state, "collaborators", None)
    return found


def _of(request: Request) -> Collaborators:
    collaborators: Collaborators = request.app.state.collaborators
    return collaborators


# The providers are coroutine functions: FastAPI runs a plain `def` dependency in a thread.


async def get_connections(request: Request) -> ConnectionRepository:
    """The connection repository."""
    return _of(request).connections


async def get_keys(request: Request) -> KeyRepository:
    """The workspaces and API keys repository."""
    return _of(request).keys


async def get_ui_session_ttl(request: Request) -> int:
    """How long a dashboard sign-in lasts, in seconds."""
    return _of(request).ui_session_ttl_seconds


async def get_sessions(request: Request) -> SessionRepository:
    """The connect-session repository."""
    return _of(request).sessions


async def get_cipher(request: Request) -> Cipher:
    """The deployment's cipher (credentials, connect links, browser binding)."""
    return _of(request).cipher


async def get_reads(request: Request) -> CachedReads:
    """The process's cached reads (API keys, connections, credentials)."""
    return _of(request).reads


async def get_apps(request: Request) -> Apps:
    """The configured apps as of this request."""
    return _of(request).current_apps()


async def get_upstream(request: Request) -> Client:
    """The pooled upstream client."""
    return _of(request).upstream


async def get_database(request: Request) -> Database:
    """The database (for readiness and its outage account)."""
    return _of(request).database


async def get_metrics(request: Request) -> GatewayMetrics:
    """The gateway's request metrics of this process."""
    return _of(request).metrics


async def get_public_url(request: Request) -> str:
    """The URL people and providers reach this deployment at (no trailing slash)."""
    return _of(request).public_url


async def get_session_ttl(request: Request) -> int:
    """How long a connect link works, in seconds."""
    return _of(request).session_ttl_seconds


async def get_request_logs(request: Request) -> RequestLogRepository:
    """The stored request log."""
    return _of(request).request_logs


async def get_events(request: Request) -> EventRepository:
    """The audit events."""
    return _of(request).events


async def get_webhooks(request: Request) -> WebhookRepository:
    """The webhook endpoints and deliveries."""
    return _of(request).webhooks


async def get_destination_check(request: Request) -> Callable[[str], Awaitable[None]]:
    """The check a webhook URL must pass (scheme, the operator's allow-list)."""
    return _of(request).check_destination


ConnectionsDep = Annotated[ConnectionRepository, Depends(get_connections)]
KeysDep = Annotated[KeyRepository, Depends(get_keys)]
UiSessionTtlDep = Annotated[int, Depends(get_ui_session_ttl)]
SessionsDep = Annotated[SessionRepository, Depends(get_sessions)]
CipherDep = Annotated[Cipher, Depends(get_cipher)]
ReadsDep = Annotated[CachedReads, Depends(get_reads)]
AppsDep = Annotated[Apps, Depends(get_apps)]
UpstreamDep = Annotated[Client, Depends(get_upstream)]
DatabaseDep = Annotated[Database, Depends(get_database)]
MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]
PublicUrlDep = Annotated[str, Depends(get_public_url)]
SessionTtlDep = Annotated[int, Depends(get_session_ttl)]
RequestLogsDep = Annotated[RequestLogRepository, Depends(get_request_logs)]
EventsDep = Annotated[EventRepository, Depends(get_events)]
WebhooksDep = Annotated[WebhookRepository, Depends(get_webhooks)]
DestinationCheckDep = Annotated[Callable[[str], Awaitable[None]], Depends(get_destination_check)]
