"""`create_app(settings)`: one ASGI app that routes every surface.

Gateway requests are dispatched on the first path segment before FastAPI sees them, so the hot
path pays for no framework routing or middleware; everything else goes to FastAPI.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pyreqwest.client import Client
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from keygate import __version__, dashboard
from keygate import metrics as server_metrics
from keygate.catalog.loader import RESERVED_NAMES
from keygate.clock import Clock, system_clock
from keygate.connect import oauth_flow, pages
from keygate.connect.tokens import connect_url
from keygate.control import apps, connections, docs, openapi, record, webhooks
from keygate.control.deps import Collaborators, provide, provided
from keygate.control.security_headers import SecurityHeaders
from keygate.errors import (
    BadRequest,
    BodyTooLarge,
    KeygateError,
    MethodNotAllowedError,
    NotFoundError,
    describe_validation,
    render_error,
)
from keygate.gateway.bodies import BodyReader
from keygate.gateway.log_sink import StoredRequestLog
from keygate.gateway.metrics import GatewayMetrics
from keygate.gateway.proxy import Gateway
from keygate.gateway.ratelimit import AddressLimiter, FleetRateLimiter, KeyRateLimiter
from keygate.gateway.request_log import Entry
from keygate.mcp_server.endpoint import McpEndpoint
from keygate.oauth.lifecycle import RefreshPolicy, RefreshStep, TokenLifecycle
from keygate.oauth.scheduler import RefreshScheduler, SchedulePolicy
from keygate.ops import router as ops_router
from keygate.runtime import Runtime
from keygate.settings import Settings
from keygate.store.outage import is_unreachable
from keygate.store.ratelimits import RateBuckets
from keygate.store.reads import CachedReads
from keygate.store.refresh_claims import RefreshClaims
from keygate.store.sessions import SessionRepository
from keygate.webhooks.destinations import DestinationPolicy
from keygate.webhooks.worker import DeliveryWorker

log = logging.getLogger("keygate")
Scope = dict[str, Any]


def _error_response(error: KeygateError) -> Response:
    status, headers, body = render_error(error)
    return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def _allowed_methods(request: Request, exc: StarletteHTTPException) -> str:
    """The `Allow` value of a 405: every method some route serves on this path.

    Starlette's own header names the methods of the first route that matched the path only, and
    a path such as `/connections` has one route per method.
    """
    scope = request.scope
    allowed = [
        method
        for method in _HTTP_METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed) if allowed else (exc.headers or {}).get("Allow", "")


def build_control_app() -> FastAPI:
    """The FastAPI app for the control plane, catalog, connect pages and operations."""
    api = FastAPI(
        title="Keygate",
        version=__version__,
        description="Self-hosted API gateway with managed OAuth. Gateway: ANY /{app}/{path}.",
        docs_url=None,  # control.docs serves Swagger UI without a CDN
        redoc_url=None,
    )
    api.add_middleware(SecurityHeaders)

    @api.exception_handler(KeygateError)
    async def _keygate_error(_: Request, exc: KeygateError) -> Response:
        return _error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        return _error_response(BadRequest(describe_validation(exc)))

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error_response(NotFoundError())
        if exc.status_code == 405:
            return _error_response(MethodNotAllowedError(_allowed_methods(request, exc)))
        if exc.status_code == 400:
            return _error_response(BadRequest(str(exc.detail)))
        return _error_response(KeygateError(str(exc.detail)))

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        wired = provided(request.app)
        if wired is not None and is_unreachable(exc):
            # A database outage the store did not translate: expected, logged by its account.
            return _error_response(wired.database.outage.failed(exc))
        log.exception("control-plane request failed", exc_info=exc)
        return _error_response(KeygateError())

    routers = (
        connections.router,
        apps.router,
        pages.router,
        oauth_flow.router,
        docs.router,
        record.router,
        webhooks.router,
        ops_router,
    )
    for router in routers:
        api.include_router(router)
    dashboard.install(api)
    openapi.install(api, lambda: _methods_by_app(api), lambda: _params_by_method(api))
    return api


def _methods_by_app(api: FastAPI) -> dict[str, list[str]]:
    """Each app of the running catalog with its methods, the default first (for the document)."""
    wired = provided(api)
    if wired is None:
        return {}
    return {name: app.spec.method_names for name, app in wired.current_apps().items()}


def _params_by_method(api: FastAPI) -> dict[tuple[str, str], dict[str, str]]:
    """Each (app, method) of the running catalog with its connection parameters' patterns."""
    wired = provided(api)
    if wired is None:
        return {}
    return {
        (name, method.type.value): {p.name: p.pattern for p in app.spec.params_for(method)}
        for name, app in wired.current_apps().items()
        for method in app.spec.methods
    }


_NOT_LIMITED = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: a load balancer or Prometheus must never be refused."""


def key_rate_limiter(runtime: Runtime) -> KeyRateLimiter | FleetRateLimiter:
    """The per-key limit: fleet-wide on PostgreSQL (leased from the database), else this
    process's own buckets."""
    settings = runtime.settings
    rate, burst = settings.rate_limit_per_second, settings.rate_limit_burst
    if runtime.db.dialect == "postgresql":
        return FleetRateLimiter(rate, burst, RateBuckets(runtime.db))
    return KeyRateLimiter(rate, burst)


def _reconnect_url(runtime: Runtime) -> Callable[[str], str]:
    def reconnect_url(connection_id: str) -> str:
        # Read when a link is made, as the connect pages read them.
        return connect_url(runtime.settings.public_url, runtime.cipher, connection_id)

    return reconnect_url


def _build_lifecycle(runtime: Runtime, on_refresh_step: RefreshStep | None) -> TokenLifecycle:
    """The process's one token lifecycle: the gateway and the refresh scheduler share it, so
    they share its single flight (built inside the serving loop, where the pooled upstream
    client must be created)."""
    return TokenLifecycle(
        runtime.connections,
        runtime.cache.credentials,
        runtime.upstream,
        RefreshPolicy.from_settings(runtime.settings),
        _reconnect_url(runtime),
        clock=runtime.clock,
        on_step=on_refresh_step,
    )


def _build_scheduler(runtime: Runtime, lifecycle: TokenLifecycle) -> RefreshScheduler:
    """The background refresh of due OAuth tokens (`oauth/scheduler.py`)."""
    return RefreshScheduler(
        RefreshClaims(runtime.db, runtime.connections),
        lifecycle,
        runtime.apps,
        SchedulePolicy.from_settings(runtime.settings),
        clock=runtime.clock,
    )


def _build_gateway(
    runtime: Runtime,
    reads: CachedReads,
    metrics: GatewayMetrics,
    lifecycle: TokenLifecycle,
    limiter: KeyRateLimiter | FleetRateLimiter,
    addresses: AddressLimiter,
    store_log: Callable[[list[Entry]], None] | None,
) -> Gateway:
    """The gateway, given the parts of the runtime it uses (built inside the serving loop, where
    the pooled upstream client must be created)."""
    upstream = runtime.upstream
    return Gateway(
        apps=runtime.apps,
        cache=runtime.cache,
        reads=reads,
        connections=runtime.connections,
        lifecycle=lifecycle,
        upstream=upstream,
        exact_upstream=runtime.exact_upstream,
        settings=runtime.settings,
        reconnect_url=_reconnect_url(runtime),
        outage=runtime.db.outage,
        metrics=metrics,
        clock=runtime.clock,
        limiter=limiter,
        addresses=addresses,
        store_log=store_log,
    )


class KeygateApp:
    """The ASGI entry point: lifespan, gateway dispatch, body limits, then FastAPI."""

    def __init__(
        self,
        settings: Settings,
        upstream: Client | None = None,
        on_refresh_step: RefreshStep | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self._upstream = upstream
        self._on_refresh_step = on_refresh_step
        self._clock = clock
        self.control = build_control_app()
        self.metrics = GatewayMetrics()
        self._body = BodyReader(settings.body_idle_timeout)
        trusted = settings.trusted_proxies
        self._control_limit = AddressLimiter(
            settings.control_rate_limit_per_second, settings.control_rate_limit_burst, trusted
        )
        self._unknown_keys = AddressLimiter(
            settings.unknown_key_rate_limit_per_second,
            settings.unknown_key_rate_limit_burst,
            trusted,
        )
        self._key_limit: KeyRateLimiter | FleetRateLimiter | None = None
        self.runtime: Runtime | None = None
        self.gateway: Gateway | None = None
        self.mcp: McpEndpoint | None = None
        self.stored_log: StoredRequestLog | None = None
        self.webhook_worker: DeliveryWorker | None = None
        self.webhook_destinations: DestinationPolicy | None = None
        self._serving = AsyncExitStack()

    async def startup(self) -> None:
        """Open the runtime (refusing to start on a bad key or catalog) and wire the surfaces."""
        server_metrics.use_directory(self.settings.metrics_dir)
        server_metrics.process_started()
        runtime = await Runtime.open(
            self.settings,
            run_migrations=self.settings.migrate_on_start,
            upstream=self._upstream,
            clock=self._clock,
        )
        runtime.start_background()
        self.runtime = runtime
        # One cache of reads for the process, shared by the gateway and the control plane.
        reads = CachedReads(runtime.keys, runtime.connections, runtime.cache, self._unknown_keys)
        settings = self.settings
        if settings.request_log:
            self.stored_log = StoredRequestLog(
                runtime.request_logs, settings.request_log_queue_rows
            )
            self.stored_log.start()
        self._key_limit = key_rate_limiter(runtime)
        lifecycle = _build_lifecycle(runtime, self._on_refresh_step)
        self.gateway = _build_gateway(
            runtime,
            reads,
            self.metrics,
            lifecycle,
            self._key_limit,
            self._unknown_keys,
            self.stored_log.put if self.stored_log else None,
        )
        if settings.proactive_refresh:
            scheduler = _build_scheduler(runtime, lifecycle)
            runtime.run_in_background(scheduler.run, scheduler.stop)
        destinations = DestinationPolicy(settings.webhook_allowed_destinations)
        self.webhook_destinations = destinations  # registration and the worker check it
        self.webhook_worker = DeliveryWorker(
            runtime.webhooks,
            destinations,
            schedule=settings.webhook_retry_schedule,
            poll_interval=settings.webhook_poll_interval,
            lease_seconds=settings.webhook_lease_seconds,
            timeout=settings.webhook_timeout,
        )
        self.webhook_worker.start()
        provide(
            self.control,
            Collaborators(
                connections=runtime.connections,
                keys=runtime.keys,
                sessions=SessionRepository(runtime.db),
                cipher=runtime.cipher,
                reads=reads,
                # `Runtime.reload` updates `runtime.apps` in place (the gateway holds the same
                # mapping); the control plane reads it at request time all the same.
                current_apps=lambda: runtime.apps,
                upstream=runtime.upstream,
                database=runtime.db,
                metrics=self.metrics,
                public_url=self.settings.public_url,
                session_ttl_seconds=self.settings.session_ttl_seconds,
                ui_session_ttl_seconds=self.settings.ui_session_ttl_seconds,
                request_logs=runtime.request_logs,
                events=runtime.events,
                webhooks=runtime.webhooks,
                check_destination=destinations.check,
            ),
        )
        # The MCP tools call this very app (control plane and gateway) with the caller's key.
        mcp = McpEndpoint(
            reads=reads,
            public_url=self.settings.public_url,
            keygate=self.dispatch,
            body_limit=self.settings.mcp_max_body,
        )
        await self._serving.enter_async_context(mcp.running())
        self.mcp = mcp
        # Start-up objects (catalog, ORM, routes) never die: keep the collector off them, and
        # collect the young generation less often, as the proxy allocates per request.
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)

    async def shutdown(self) -> None:
        """Stop the MCP endpoint, flush the access log and close the runtime."""
        self.mcp = None
        await self._serving.aclose()
        if self.webhook_worker is not None:
            await self.webhook_worker.close()
            self.webhook_worker = None
        if self.gateway is not None:
            self.gateway.close()
        if isinstance(self._key_limit, FleetRateLimiter):
            await self._key_limit.close()
        if self.stored_log is not None:
            await self.stored_log.close()
            self.stored_log = None
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None
        server_metrics.process_exited()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.dispatch(scope, receive, send)

    def dispatch(self, scope: Scope, receive: Any, send: Any) -> Awaitable[None]:
        """The ASGI call without a coroutine of its own: it returns the handler's coroutine.

        `keygate serve` hands this to granian, so a gateway request runs one coroutine frame
        shallower (every suspension resumes through each frame of the chain). `__call__` stays
        a coroutine function for servers that tell ASGI 3 from ASGI 2 by that.
        """
        kind = scope["type"]
        if kind == "http" and self.gateway is not None:
            path: str = scope["path"]
            end = path.find("/", 1)
            first = path[1:] if end == -1 else path[1:end]
            if first and first not in RESERVED_NAMES:
                return self.gateway(scope, receive, send)
            return self._control(scope, receive, send)
        if kind == "lifespan":
            return self._lifespan(receive, send)
        return self.control(scope, receive, send)

    async def _control(self, scope: Scope, receive: Any, send: Any) -> None:
        # The client's address, for the control-plane limit and for failed key lookups.
        address = scope["keygate.client"] = self._control_limit.address(scope)
        if self._control_limit.enabled and scope["path"] not in _NOT_LIMITED:
            wait = self._control_limit.spend(address)
            if wait:
                limit = self.settings.control_rate_limit_per_second
                refused = self._control_limit.refuse(
                    f"This address is over Keygate's control-plane limit of {limit:g} requests "
                    "per second.",
                    wait,
                )
                await _error_response(refused)(scope, receive, send)
                return
        # The body is read here, whole (the limit is small), before FastAPI sees the request:
        # FastAPI turns any error raised while it reads a body into a 400 "error parsing the
        # body", which would hide a 413 or a 408.
        try:
            body = await self._control_body(scope, receive)
        except KeygateError as error:
            await _error_response(error)(scope, receive, send)
            return
        # `/mcp` is not FastAPI's: the MCP SDK answers it (after Keygate's own checks).
        target = self.control if scope["path"] != "/mcp" or self.mcp is None else self.mcp
        if body is None:
            await target(scope, receive, send)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:  # after the body, FastAPI may wait for the disconnect
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await target(scope, replay, send)

    async def _control_body(self, scope: Scope, receive: Any) -> bytes | None:
        """The whole request body within the control-plane limits (None: the request has none).

        413 over `KEYGATE_MAX_CONTROL_BODY`, 408 when it stalls, 400 when it is malformed or
        ends early (granian reports both as a disconnect: see `keygate.gateway.bodies`).
        """
        limit = self.settings.max_control_body
        too_large = f"Control-plane request bodies are limited to {limit} bytes."
        has_body = scope.get("http_version") == "2"
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > limit:
                    raise BodyTooLarge(too_large)
                has_body = True
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:  # HTTP/1.1 without either header has no body
            return None
        parts: list[bytes] = []
        received = 0
        while True:
            chunk, more = await self._body.read(receive)
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge(too_large)
            parts.append(chunk)
            if not more:
                return b"".join(parts)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.error("Keygate cannot start: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    settings: Settings,
    upstream: Client | None = None,
    on_refresh_step: RefreshStep | None = None,
    clock: Clock = system_clock,
) -> KeygateApp:
    """The Keygate ASGI app for these settings (`keygate.asgi` reads them from the environment).

    `upstream` replaces the pooled upstream client; `on_refresh_step` observes token refreshes;
    `clock` is the time source token refreshes go by (tests pass one they can advance).
    """
    return KeygateApp(settings, upstream, on_refresh_step, clock)
