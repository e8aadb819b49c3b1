"""The proxy hot path: `ANY /{app}/{native-path}` → the app's upstream, credential injected.

Everything a steady-state request needs (API key, connection, credential) comes from the process
cache, the upstream client is one pooled keep-alive client per process, and bodies stream both
ways: small ones in a single message, large ones chunk by chunk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from pyreqwest import exceptions as upstream_errors
from pyreqwest.client import Client

from keygate import metrics
from keygate.catalog.loader import ConfiguredApp
from keygate.clock import Clock
from keygate.errors import (
    BodyTooLarge,
    ConnectionAppMismatch,
    ConnectionNotActive,
    ConnectionNotFound,
    KeygateError,
    MethodNotAllowedError,
    NoActiveConnection,
    ReauthorizationRequired,
    StoreUnavailable,
    UnknownAppError,
    UpstreamTimeout,
    UpstreamUnreachable,
    render_error,
)
from keygate.gateway.bodies import BodyReader, StreamedBody
from keygate.gateway.caller_key import (
    find_caller_key,
    has_bearer,
    without_query_param,
    without_slot_header,
)
from keygate.gateway.exact import ExactClient
from keygate.gateway.headers import (
    downstream_response_headers,
    read_caller_headers,
    readable_response_headers,
    refuse_control_bytes,
)
from keygate.gateway.injection import Injection, Injector
from keygate.gateway.metrics import GatewayMetrics
from keygate.gateway.paths import check_native_path, check_query, client_rewrites_path, split_app
from keygate.gateway.ratelimit import KeyRateLimiter
from keygate.gateway.request_log import Entry, RequestLog
from keygate.oauth.lifecycle import TokenLifecycle
from keygate.settings import Settings
from keygate.store.cache import StateCache
from keygate.store.connections import ConnectionRepository
from keygate.store.outage import StoreOutage, is_unreachable
from keygate.store.reads import CachedReads
from keygate.store.records import ConnectionRecord, CredentialRecord, Status

Scope = dict[str, Any]
log = logging.getLogger("keygate.gateway")

# The methods an HTTP API uses (RFC 9110 §9.3, PATCH from RFC 5789); anything else is answered
# 405 without contacting the upstream. TRACE would echo the injected credential back to the
# caller (§9.3.8) and CONNECT would open a tunnel with it.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
FORWARDED_METHODS = frozenset(_METHODS)
_ALLOW = ", ".join(_METHODS)
_NOT_FORWARDED = f"The gateway forwards only these methods: {_ALLOW}."
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_WHOLE_RESPONSE_MAX = 64 * 1024
_MAX_ROUTES = 100_000


class Gateway:
    """The ASGI handler for gateway requests (dispatched before any framework routing).

    It holds what it uses and nothing else: `apps` is the runtime's mapping of configured apps,
    which the runtime updates in place on every reload (so the gateway always sees the current
    one without a call per request); `reads`, the process's one `CachedReads`; `connections`,
    for a background refresh; the two upstream clients; the token lifecycle, and the link a
    person opens to re-authorize a connection.
    """

    def __init__(
        self,
        *,
        apps: Mapping[str, ConfiguredApp],
        cache: StateCache,
        reads: CachedReads,
        connections: ConnectionRepository,
        lifecycle: TokenLifecycle,
        upstream: Client,
        exact_upstream: ExactClient,
        settings: Settings,
        reconnect_url: Callable[[str], str],
        outage: StoreOutage,
        metrics: GatewayMetrics,
        clock: Clock,
        store_log: Callable[[list[Entry]], None] | None = None,
    ) -> None:
        # Bound once: the mapping is updated in place, never replaced (see `Runtime.reload`).
        self._app_of = apps.get
        self._reads = reads
        self._cache = cache
        self._credential_of = cache.credentials.lookup
        self._connections = connections
        self._upstream = upstream
        self._exact_upstream = exact_upstream
        self._reconnect_url = reconnect_url
        self._outage = outage
        self._clock = clock  # tests move it; production is time.time
        # (app, Authorization, connection choice) → route; dropped with the cache on any write.
        self._routes: dict[tuple[str, bytes | None, bytes | None], _Route] = {}
        cache.on_clear(self._routes.clear)
        self._lifecycle = lifecycle
        self._injector = Injector(reads, lifecycle, cache)
        self._background: set[asyncio.Task[None]] = set()
        limiter = KeyRateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        self._limiter = limiter if limiter.enabled else None
        self._max_body = settings.max_request_body
        self._body = BodyReader(settings.body_idle_timeout)
        self._log = RequestLog(
            metrics,
            lines=settings.access_log,
            json=settings.log_format == "json",
            store=store_log,
        )
        self._pending = self._log.entries
        self._batch = self._log.max_lines
        # Request ids: 32 hex characters, a random per-process prefix and a counter — unique
        # across processes and restarts without a random-number syscall per request (they are
        # correlation ids, not secrets). Built inline below: a call per request cost more.
        self._id_prefix = os.urandom(10).hex().encode()
        self._id_counter = 0

    def close(self) -> None:
        """Count and write what the request log still holds."""
        self._log.flush()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        # The request runs in this one coroutine (a large response streams through one more):
        # every await that suspends resumes through each coroutine frame above it, and a Python
        # call costs ~0.1 % of a request. So the steady-state steps stay inline, each named by a
        # numbered comment, and what only a first request, a refused token, a rewritten byte or
        # an error needs is a method of its own.
        started = time.perf_counter()
        # 1. The caller's headers, read in one pass; its request id if valid, else a new one.
        forward, forwarded_names, authorization, choice, request_id, declared, chunked, exact = (
            read_caller_headers(scope["headers"])
        )
        if request_id is None or _REQUEST_ID.fullmatch(request_id) is None:
            self._id_counter = number = (self._id_counter + 1) & 0xFFFFFFFFFFFF
            request_id = b"%s%012x" % (self._id_prefix, number)
        app_name = "-"
        status = 500
        connection_id = ""
        query = b""
        caller: tuple[str, str] | None = None
        by_keygate = False
        streamed: StreamedBody | None = None
        try:
            # 2. The target: method, app, native path and query give the upstream URL.
            if scope["method"] not in FORWARDED_METHODS:
                raise MethodNotAllowedError(_ALLOW, _NOT_FORWARDED)
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode("latin-1")
            app_name, native, safe = split_app(raw_path)
            app = self._app_of(app_name)
            if app is None:
                app_name = "-"
                raise UnknownAppError("Unknown app. GET /apps lists the apps this Keygate serves.")
            if not safe:
                native = check_native_path(native)
                exact = exact or client_rewrites_path(native)
            url = app.base_url + native.decode("ascii")
            query = scope.get("query_string", b"")
            if query:
                exact = check_query(query) or exact
                url += "?" + query.decode("ascii")

            # 3. The route: API key, connection and rendered credential. It is keyed by the app
            # and the raw Authorization and connection-choice values, unparsed: the same values
            # resolve to the same key and connection until a write clears the cache (and the
            # routes with it), so a hit hashes no token and looks up no record. It is resolved
            # again when the token is due for refresh, and when the credential cache no longer
            # holds the very record the route was built from (`is not`, one pointer compare): a
            # refresh puts its new credential there without a cache clear, and a clear empties it.
            now = self._clock()
            route = self._routes.get((app_name, authorization, choice))
            if route is None and app.caller_slots and not has_bearer(authorization):
                # No Bearer: the key may be where the app's own SDK puts its credential. Routes
                # are kept under `Bearer <key>` only, so such a request always gets here and its
                # slot is always taken out of what is forwarded.
                authorization, forward, url = self._caller_key(
                    app, authorization, scope["headers"], forward, forwarded_names, query, url
                )
                route = self._routes.get((app_name, authorization, choice))
            if (
                route is None
                or route.refresh_at <= now
                or self._credential_of(route.connection.id) is not route.credential
            ):
                route = await self._resolve(app, authorization, choice, scope["headers"])
            self._cache.key_uses[route.key_id] = now
            caller = route.caller
            if self._limiter is not None:
                self._limiter.check(route.key_id)
            connection_id = route.connection.id
            injection = route.injection
            auth = injection.auth

            # 4. The headers to send: the caller's (less any it sent under an injected name) and
            # the app's defaults it did not send.
            if auth.drop and not auth.drop.isdisjoint(forwarded_names):
                forward = auth.without_injected(forward)  # the caller may not set a secret's name
            for key, name, value in app.default_headers:
                if key not in forwarded_names:
                    forward.append((name, value))

            # 5. The body: refused early over a declared limit; a small one read whole, a large
            # one streamed on as it arrives.
            if declared is not None and self._max_body and _length(declared) > self._max_body:
                raise BodyTooLarge(StreamedBody.limit_message(self._max_body))
            first = b""
            # HTTP/1.1 without Content-Length or Transfer-Encoding has no body: no receive().
            if declared is not None or chunked or scope.get("http_version") == "2":
                first, more = await self._body.read(receive)
                if more:
                    streamed = StreamedBody(first, receive, self._max_body, self._body)
            if exact:
                refuse_control_bytes(forward)

            # 6. The exchange, with the credential injected; a 401 gets one refresh and one
            # replay (a body already streamed cannot be sent again).
            may_replay = injection.refreshable
            while True:
                # `url` is what the caller asked for; an injected query secret joins it only here.
                target = auth.url(url) if auth.query else url
                headers = [*forward, *auth.headers]
                if exact:
                    exchange: Any = self._exact_exchange(
                        scope["method"], target, headers, streamed, first, declared
                    )
                else:
                    try:
                        builder = self._upstream.request(scope["method"], target).headers(headers)
                    except ValueError:
                        # A control byte in a header value (some HTTP/1.1 servers let them by).
                        self._refuse_header_value(forward, request_id)
                    if streamed is not None:
                        builder = builder.body_stream(streamed)
                    elif first or declared is not None:
                        builder = builder.body_bytes(first)  # a declared length, 0 included
                    exchange = builder.build_streamed()
                async with exchange as response:
                    status = response.status
                    if status != 401 or not may_replay or streamed is not None:
                        if status == 401 and may_replay:
                            # The body is gone: pass the 401 on, but refresh for the next request.
                            self._refresh_later(connection_id, injection.version)

                        # 7. The response: the upstream's status, headers and body, as sent.
                        try:
                            out = downstream_response_headers(
                                response.headers.items(), response.get_header("connection")
                            )
                        except ValueError:
                            # A value that is not visible ASCII, which the client cannot read.
                            out = readable_response_headers(response.headers, request_id)
                        out.append((b"x-request-id", request_id))
                        out.append(route.connection_header)
                        length = response.get_header("content-length")
                        if length is not None and _length(length) <= _WHOLE_RESPONSE_MAX:
                            body = bytes(await response.bytes())
                            await send(
                                {"type": "http.response.start", "status": status, "headers": out}
                            )
                            await send({"type": "http.response.body", "body": body})
                        else:
                            await _stream_response(send, status, out, response.body_reader)
                        break
                may_replay = False
                injection = await self._refreshed(route, injection)
                auth = injection.auth
        except Exception as exc:
            by_keygate = True
            if caller is None and isinstance(exc, KeygateError):
                caller = exc.caller
            status = await self._send_failure(send, exc, streamed, request_id, connection_id)
        finally:
            # 8. The request log: queued (see `RequestLog.entries`), with a call only when a
            # batch starts or fills.
            pending = self._pending
            pending.append(
                (
                    started,
                    time.perf_counter() - started,
                    scope["method"],
                    app_name,
                    scope.get("raw_path") or scope["path"],  # as sent: `%0a` stays `%0a`
                    status,
                    connection_id,
                    request_id,
                    query,
                    caller,
                    by_keygate,
                )
            )
            size = len(pending)
            if size == 1 or size >= self._batch:
                self._log.appended()

    @staticmethod
    def _caller_key(
        app: ConfiguredApp,
        authorization: bytes | None,
        headers: list[tuple[bytes, bytes]],
        forward: list[tuple[str, str]],
        forwarded_names: set[bytes],
        query: bytes,
        url: str,
    ) -> tuple[bytes | None, list[tuple[str, str]], str]:
        """Authorization, forwarded headers and URL with a key from a native slot taken out of
        what is forwarded and presented as Bearer (unchanged when no slot holds one)."""
        found = find_caller_key(app.caller_slots, authorization, headers, query)
        if found is None:
            return authorization, forward, url
        slot = found.slot
        if slot.query is not None:
            kept = without_query_param(query, slot.query)
            url = url.partition("?")[0] + ("?" + kept.decode("ascii") if kept else "")
        elif slot.header is not None and slot.header != b"authorization":
            forward = without_slot_header(forward, forwarded_names, slot.header)
        return found.authorization, forward, url

    async def _resolve(
        self,
        app: ConfiguredApp,
        auth: bytes | None,
        choice: bytes | None,
        headers: list[tuple[bytes, bytes]],
    ) -> _Route:
        """Key, connection and credential from the cache or the store; kept as a route while
        nothing is written and the token is not due for refresh (`headers`, the caller's, only
        name the header an error is about)."""
        generation = self._cache.generation
        key = await self._reads.api_key(auth.decode("latin-1") if auth else None)
        caller = (key.workspace_id, key.prefix)
        try:
            connection = await self._choose(key.workspace_id, app, choice, headers)
            injection, credential = await self._injector.injection_for(app, connection)
        except KeygateError as error:
            error.caller = caller  # so the request log can file the refusal under the caller
            raise
        route = _Route(
            app=app,
            key_id=key.id,
            connection=connection,
            credential=credential,
            injection=injection,
            refresh_at=self._lifecycle.refresh_deadline(credential),
            connection_header=(b"keygate-connection", connection.id.encode()),
            caller=caller,
        )
        if generation == self._cache.generation:
            if len(self._routes) >= _MAX_ROUTES:
                self._routes.clear()
            self._routes[(app.name, auth, choice)] = route
        return route

    async def _choose(
        self,
        workspace_id: str,
        app: ConfiguredApp,
        chosen: bytes | None,
        headers: list[tuple[bytes, bytes]],
    ) -> ConnectionRecord:
        if chosen is None:
            default = await self._reads.default_connection(workspace_id, app.name)
            if default is None:
                raise NoActiveConnection(
                    f"No ACTIVE {app.name} connection in this workspace. "
                    "Create one with POST /connections."
                )
            return default
        connection_id = chosen.decode("latin-1").strip()
        record = await self._reads.connection(workspace_id, connection_id)
        if record is None:
            raise ConnectionNotFound(
                f"No connection with the id given in {_choice_header(headers)} in this workspace."
            )
        if record.app != app.name:
            raise ConnectionAppMismatch(
                f"Connection {record.id} is for {record.app}, not {app.name}."
            )
        if record.status is Status.FAILED and record.error_code == ReauthorizationRequired.code:
            raise ReauthorizationRequired(
                f"Connection {record.id} needs a person to re-authorize it: open reconnect_url.",
                extra={
                    "reconnect_url": self._reconnect_url(record.id),
                    "connection_id": record.id,
                },
            )
        if record.status is not Status.ACTIVE:
            raise ConnectionNotActive(
                f"Connection {record.id} is {record.status.value}, not ACTIVE. "
                "Open its url to authorize it."
            )
        return record

    def _exact_exchange(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        streamed: StreamedBody | None,
        first: bytes,
        declared: bytes | None,
    ) -> Any:
        """The exchange for bytes the pooled client would rewrite: the exact client sends them
        as given (see `gateway/exact.py`)."""
        body = streamed if streamed is not None else _body_bytes(first, declared)
        return self._exact_upstream.stream(method, target, headers, body)

    @staticmethod
    def _refuse_header_value(forward: list[tuple[str, str]], request_id: bytes) -> NoReturn:
        """The pooled client refused a header value: the caller's (400), else the injected one."""
        refuse_control_bytes(forward)
        # The injected credential's value: never in a log line or an error body.
        log.error("gateway request %s: the injected header value is invalid", request_id.decode())
        raise KeygateError()

    async def _refreshed(self, route: _Route, refused: Injection) -> Injection:
        """The upstream refused the token: refresh once (shared with concurrent callers) and
        render the new credential for the replay."""
        fresh = await self._lifecycle.refresh(route.app, route.connection, refused.version)
        return self._injector.render(route.app, route.connection, fresh)

    async def _send_failure(
        self,
        send: Any,
        exc: Exception,
        streamed: StreamedBody | None,
        request_id: bytes,
        connection_id: str,
    ) -> int:
        """Answer a request that failed with a JSON error; its status."""
        failure: KeygateError
        if isinstance(exc, KeygateError):
            failure = exc
        elif isinstance(exc, upstream_errors.RequestError):
            failure = self._upstream_failure(exc, streamed)
        elif isinstance(exc, upstream_errors.PyreqwestError):
            # The client's messages quote the upstream URL, which may carry an injected query
            # secret: log the kind of failure only.
            log.error("gateway request %s failed: %s", request_id.decode(), type(exc).__name__)
            metrics.count_upstream_error("client")
            failure = KeygateError()
        elif is_unreachable(exc):
            # A database outage the store did not translate: expected, logged by its account.
            failure = self._outage.failed(exc)
        else:
            # A bug (or a decryption failure): say so in JSON, log it once, with no request data
            # beyond the id.
            log.error("gateway request %s failed", request_id.decode(), exc_info=exc)
            failure = KeygateError()
        await self._send_error(send, failure, request_id, connection_id)
        return failure.status

    def _upstream_failure(
        self, exc: upstream_errors.RequestError, streamed: StreamedBody | None
    ) -> KeygateError:
        """The upstream client's failure, as the gateway reports it."""
        if streamed is not None and streamed.failure is not None:
            return streamed.failure  # the caller's body ended the exchange (too large, stalled)
        if isinstance(exc, upstream_errors.RequestTimeoutError):
            metrics.count_upstream_error("timeout")
            return UpstreamTimeout()
        metrics.count_upstream_error("unreachable")
        return UpstreamUnreachable()

    def _refresh_later(self, connection_id: str, seen_version: int) -> None:
        async def refresh() -> None:
            try:
                connection = await self._connections.get(connection_id)
                app = self._app_of(connection.app) if connection else None
                if connection is None or app is None:
                    return
                await self._lifecycle.refresh(app, connection, seen_version)
            except StoreUnavailable:
                return  # an outage, logged once by the store; the next 401 tries again
            except KeygateError as error:
                log.info("background refresh of %s: %s", connection_id, error.code)

        task = asyncio.create_task(refresh())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_error(
        self, send: Any, error: KeygateError, request_id: bytes, connection_id: str
    ) -> None:
        status, headers, body = render_error(error)
        headers.append((b"x-request-id", request_id))
        if connection_id:
            headers.append((b"keygate-connection", connection_id.encode()))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        except Exception:  # the response had already started: nothing more can be said
            log.debug("could not send error %s: response already started", error.code)


async def _stream_response(
    send: Any, status: int, headers: list[tuple[bytes, bytes]], reader: Any
) -> None:
    """Send a large or unsized upstream response on chunk by chunk."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    while (chunk := await reader.read_chunk()) is not None:
        await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _choice_header(headers: list[tuple[bytes, bytes]]) -> str:
    """The header the connection choice came from (Maton-Connection wins when both are sent)."""
    if any(name == b"maton-connection" for name, _ in headers):
        return "Maton-Connection"
    return "Keygate-Connection"


def _body_bytes(first: bytes, declared: bytes | None) -> bytes | None:
    """The whole body to send, if the request has one (a declared length, 0 included, is kept)."""
    return first if first or declared is not None else None


def _length(value: bytes | str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


@dataclass(slots=True)
class _Route:
    """What a steady-state request on one (app, API key, connection choice) needs."""

    app: ConfiguredApp
    key_id: str
    connection: ConnectionRecord
    credential: CredentialRecord
    injection: Injection
    refresh_at: float
    """Epoch seconds from which the token is due for refresh (the route is then re-resolved)."""
    connection_header: tuple[bytes, bytes]
    caller: tuple[str, str]
    """(workspace id, API key prefix), for the request log."""
