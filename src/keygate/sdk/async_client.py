"""`AsyncKeygate`: the asyncio client (httpx), the same calls as `Keygate` with `await`.

async with AsyncKeygate() as kg:
    connection = await kg.connections.create("klaviyo")
    answer = await kg.api.get("/klaviyo/api/profiles")
    async for profile in kg.api.paginate("/klaviyo/api/profiles", items=True): ...
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from keygate.sdk.core import (
    ClientOptions,
    app_of,
    build_request,
    connection_path,
    delay_after_error,
    delay_after_status,
    items_path,
    next_page,
    page_items,
    require_pagination,
)
from keygate.sdk.errors import ConnectionFailed, KeygateUnreachable, WaitTimeout, error_for
from keygate.sdk.models import App, Connection, ConnectionStatus


class AsyncKeygate:
    """A Keygate deployment, as one API key sees it, for asyncio code (see `Keygate`).

    `base_url` and `api_key` default to `KEYGATE_URL` (else `http://127.0.0.1:8080`) and
    `KEYGATE_API_KEY`. Connection errors (any method while nothing was sent, idempotent ones
    otherwise) and 429/503 answers are retried up to `max_retries` times, waiting as the
    answer's `Retry-After` says (an answer asking for more than `max_retry_wait` seconds is
    raised at once) or backing off exponentially. `timeout` is httpx's (seconds, or an
    `httpx.Timeout`). `connection` is a default `Maton-Connection` for gateway calls.
    `http_client` lets a caller bring its own `httpx.AsyncClient` (proxies, transports, tests).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 2,
        max_retry_wait: float = 60.0,
        connection: str | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._options = ClientOptions.resolve(
            base_url, api_key, timeout, max_retries, max_retry_wait, connection
        )
        self._owned = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=self._options.timeout)
        self.connections = AsyncConnections(self)
        self.apps = AsyncApps(self)
        self.api = AsyncApi(self)

    @property
    def base_url(self) -> str:
        """The Keygate origin this client calls."""
        return self._options.base_url

    def __repr__(self) -> str:
        return f"AsyncKeygate(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections (not those of a client passed in)."""
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncKeygate:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        connection: str | None = None,
    ) -> httpx.Response:
        """Send one request to Keygate, with retries; the answer, or the error it is."""
        request = build_request(
            self._options,
            method,
            path,
            params=params,
            json=json,
            content=content,
            headers=headers,
            connection=connection,
        )
        attempt = 0
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                delay = delay_after_error(exc, request.method, attempt, self._options)
                if delay is None:
                    raise KeygateUnreachable(
                        f"Keygate at {self.base_url} could not be reached: {type(exc).__name__}."
                    ) from exc
            else:
                delay = delay_after_status(response, attempt, self._options)
                if delay is None:
                    error = error_for(response)
                    if error is not None:
                        raise error
                    return response
                await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.request(method, path, **kwargs)).json()


class AsyncConnections:
    """`/connections`: the connections of this key's workspace."""

    def __init__(self, client: AsyncKeygate) -> None:
        self._client = client

    async def list(
        self,
        app: str | None = None,
        *,
        status: str | None = None,
        method: str | None = None,
        limit: int | None = None,
    ) -> list[Connection]:
        """Every matching connection, oldest first (following `next_cursor` to the end)."""
        params = {"app": app, "status": status, "method": method, "limit": limit}
        query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        found: list[Connection] = []
        while True:
            page = await self._client._json("GET", "/connections", params=query)
            found.extend(Connection.from_json(item) for item in page["connections"])
            if not page.get("next_cursor"):
                return found
            query["cursor"] = page["next_cursor"]

    async def create(
        self, app: str, *, method: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Connection:
        """A new PENDING connection; hand its `url` to the person who authorizes it."""
        body: dict[str, Any] = {"app": app}
        if method is not None:
            body["method"] = method
        if metadata is not None:
            body["metadata"] = metadata
        return Connection.from_json(
            (await self._client._json("POST", "/connections", json=body))["connection"]
        )

    async def get(self, connection_id: str) -> Connection:
        """One connection (`ConnectionNotFound` if this workspace has none with that id)."""
        answer = await self._client._json("GET", connection_path(connection_id))
        return Connection.from_json(answer["connection"])

    async def delete(self, connection_id: str) -> Connection:
        """Delete a connection (its upstream tokens are revoked where the provider can)."""
        answer = await self._client._json("DELETE", connection_path(connection_id))
        return Connection.from_json(answer["connection"])

    async def wait(
        self,
        connection_id: str,
        until: ConnectionStatus = "ACTIVE",
        *,
        timeout: float = 300.0,  # noqa: ASYNC109  # the same call as Keygate.connections.wait
        interval: float = 1.0,
    ) -> Connection:
        """Poll the connection until its status is `until`; the connection then.

        Raises `ConnectionFailed` if it turns FAILED while another status is awaited, and
        `WaitTimeout` (a `TimeoutError`) when `timeout` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        while True:
            connection = await self.get(connection_id)
            if connection.status == until:
                return connection
            if connection.status == "FAILED":
                reason = (connection.error or {}).get("message", "no reason given")
                raise ConnectionFailed(f"Connection {connection_id} FAILED: {reason}", connection)
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(
                    f"Connection {connection_id} is still {connection.status} after "
                    f"{timeout:g} s (awaited {until}).",
                    connection,
                )
            await asyncio.sleep(min(interval, left))


class AsyncApps:
    """`/apps`: the catalog this Keygate serves."""

    def __init__(self, client: AsyncKeygate) -> None:
        self._client = client
        self._details: dict[str, App] = {}

    async def list(self) -> list[App]:
        """Every app of the catalog."""
        return [App.from_json(item) for item in (await self._client._json("GET", "/apps"))["apps"]]

    async def get(self, app: str) -> App:
        """One app with its pagination and endpoints (`UnknownApp` if not in the catalog)."""
        answer = await self._client._json("GET", "/apps/" + quote(app, safe=""))
        found = App.from_json(answer["app"])
        self._details[app] = found
        return found

    async def cached(self, app: str) -> App:
        """`get`, asked once per client (pagination does not change while Keygate runs)."""
        return self._details.get(app) or await self.get(app)


class AsyncApi:
    """Calls through the gateway: `/{app}/{native-path}`, the provider's own API."""

    def __init__(self, client: AsyncKeygate) -> None:
        self._client = client

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any method; keyword arguments as for `get`."""
        return await self._client.request(method, path, **kwargs)

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        connection: str | None = None,
    ) -> httpx.Response:
        """GET `path` (`/{app}/…`); `connection` chooses one (else the app's oldest ACTIVE).

        A provider's non-2xx answer raises `UpstreamError`, Keygate's own a `GatewayError`.
        """
        return await self.request(
            "GET", path, params=params, headers=headers, connection=connection
        )

    async def post(self, path: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        """POST `path` with a JSON body (or `content=` bytes)."""
        return await self.request("POST", path, json=json, **kwargs)

    async def put(self, path: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        """PUT `path` with a JSON body (or `content=` bytes)."""
        return await self.request("PUT", path, json=json, **kwargs)

    async def patch(self, path: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        """PATCH `path` with a JSON body (or `content=` bytes)."""
        return await self.request("PATCH", path, json=json, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        """DELETE `path`."""
        return await self.request("DELETE", path, **kwargs)

    async def paginate(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        connection: str | None = None,
        items: bool | str = False,
        max_pages: int | None = None,
    ) -> AsyncIterator[Any]:
        """GET `path` and every next page the app's pagination points at, through the gateway.

        Yields each page's parsed JSON body, or with `items=True` each item of each page (at
        the catalog's item path; give a dotted path such as `items="contacts"` where the app
        has none). The pagination is learnt from `GET /apps/{app}` once per client.
        """
        app = await self._client.apps.cached(app_of(path))
        require_pagination(app)
        where = items_path(app, items)
        seen: set[str] = set()
        current: str | None = path
        pages = 0
        while current is not None and (max_pages is None or pages < max_pages):
            answer = await self.get(current, params=params, headers=headers, connection=connection)
            body = answer.json()
            pages += 1
            if where is None:
                yield body
            else:
                for item in page_items(body, where):
                    yield item
            seen.add(current)
            params = None  # a next link carries the whole query
            current = next_page(app, body)
            if current in seen:
                return  # a link back to a page already read: stop rather than loop
