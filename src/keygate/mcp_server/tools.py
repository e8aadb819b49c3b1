"""The MCP tools: Keygate's control plane, catalog and gateway, one tool per thing an agent does.

Every tool reaches Keygate through the `KeygateAPI` that `api_of` gives it for the request (the
caller's key on Keygate's own HTTP API), so what a tool can see is what the key can see.
Refusals a model can correct (a wrong argument, an unknown id) are tool errors; an answer of
the app, whatever its status, is a result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import quote

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from keygate import __version__
from keygate.mcp_server import actions, calls
from keygate.mcp_server.keygate_api import KeygateAnswerError, KeygateAPI
from keygate.mcp_server.shapes import (
    Action,
    ActionList,
    ApiResult,
    AppBrief,
    AppDetail,
    AppList,
    ConnectionList,
    ConnectionResult,
    Deleted,
    NewConnection,
    WhoAmI,
)

ApiOf = Callable[[Context], KeygateAPI]
Scalar = str | int | float | bool

INSTRUCTIONS = (
    "Keygate holds this workspace's credentials for third-party apps and injects them into "
    "every call. Find an app with search_apps, an action with search_actions, then run_action; "
    "or call_api with the app's native path. When a result carries action_needed, show its "
    "connect_url to the user unchanged and wait for them."
)

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_CREATE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
_DELETE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
)
# A call may be any method of the app's API: it may write, delete, and do so twice.
_CALL = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)

AppArg = Annotated[str, Field(description="The app's name, e.g. klaviyo or constant-contact")]
ConnectionArg = Annotated[
    str | None,
    Field(description="Connection id to use; default: the app's oldest ACTIVE connection"),
]
HeadersArg = Annotated[
    dict[str, str] | None,
    Field(description="Extra request headers (the key and connection are added for you)"),
]
BodyArg = Annotated[
    Any, Field(description="Request body: an object or array is sent as JSON, a string as is")
]


def _connection_path(connection_id: str) -> str:
    # Encoded whole: an id can never add a path segment.
    return f"/connections/{quote(connection_id, safe='')}"


def _fail(exc: KeygateAnswerError) -> NoReturn:
    raise ToolError(str(exc)) from exc


def build_server(
    api_of: ApiOf, *, body_limit: int, default_connection: str | None = None
) -> MCPServer[Any]:
    """The MCP server with Keygate's tools; `api_of` gives the caller's API for a request."""
    server: MCPServer[Any] = MCPServer(
        "keygate",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level="WARNING",
        # Nothing to subscribe to, and a listen stream would tie a client to one process.
        subscriptions=False,
    )
    default_app: dict[str, str] = {}  # the default connection's app, learnt on first use

    async def app_detail(api: KeygateAPI, app: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = (
                await api.control("GET", f"/apps/{quote(calls.check_app(app), safe='')}")
            )["app"]
        except calls.CallInputError as exc:
            raise ToolError(str(exc)) from exc
        except KeygateAnswerError as exc:
            _fail(exc)
        return found

    async def every_app(api: KeygateAPI) -> list[dict[str, Any]]:
        try:
            listed = (await api.control("GET", "/apps"))["apps"]
        except KeygateAnswerError as exc:
            _fail(exc)
        return [await app_detail(api, entry["app"]) for entry in listed]

    async def connection_for(api: KeygateAPI, app: str, given: str | None) -> str | None:
        if given or default_connection is None:
            return given
        if not default_app:
            try:
                found = await api.control("GET", _connection_path(default_connection))
            except KeygateAnswerError:
                return None  # gone: the gateway picks the app's oldest ACTIVE connection
            default_app[default_connection] = found["connection"]["app"]
        return default_connection if default_app.get(default_connection) == app else None

    @server.tool(annotations=_READ)
    async def whoami(ctx: Context) -> WhoAmI:
        """Check the key: which Keygate it reaches, its apps, and its workspace's connections."""
        api = api_of(ctx)
        try:
            apps = (await api.control("GET", "/apps"))["apps"]
            listed = await api.control("GET", "/connections", params={"limit": 1000})
        except KeygateAnswerError as exc:
            _fail(exc)
        counts: dict[str, dict[str, int]] = {}
        for connection in listed["connections"]:
            per_app = counts.setdefault(connection["app"], {})
            per_app[connection["status"]] = per_app.get(connection["status"], 0) + 1
        return WhoAmI(
            keygate_url=api.public_url,
            authenticated=True,
            apps=[a["app"] for a in apps],
            connections=counts,
            default_connection=default_connection,
        )

    @server.tool(annotations=_READ)
    async def search_apps(
        ctx: Context,
        query: Annotated[str, Field(description="Words of the app's name; empty: all")] = "",
    ) -> AppList:
        """Find the apps this Keygate serves, with their connection methods."""
        api = api_of(ctx)
        try:
            apps = (await api.control("GET", "/apps"))["apps"]
            active = await api.control(
                "GET", "/connections", params={"status": "ACTIVE", "limit": 1000}
            )
        except KeygateAnswerError as exc:
            _fail(exc)
        words = query.lower().split()
        found = [
            AppBrief(
                app=a["app"],
                display_name=a["display_name"],
                methods=a["methods"],
                docs_url=a["docs_url"],
                active_connections=sum(1 for c in active["connections"] if c["app"] == a["app"]),
            )
            for a in apps
            if all(w in f"{a['app']} {a['display_name']}".lower() for w in words)
        ]
        return AppList(apps=found)

    @server.tool(annotations=_READ)
    async def get_app(
        ctx: Context,
        app: AppArg,
        lang: Annotated[Literal["en", "zh"], Field(description="Language of the skill")] = "en",
    ) -> AppDetail:
        """One app: connection methods, pagination, its actions, and its agent skill."""
        api = api_of(ctx)
        found = await app_detail(api, app)
        name = found["app"]
        try:
            skill = await api.text(f"/apps/{quote(name, safe='')}/skill", params={"lang": lang})
        except KeygateAnswerError as exc:
            _fail(exc)
        return AppDetail(
            app=name,
            display_name=found["display_name"],
            methods=found["methods"],
            docs_url=found["docs_url"],
            base_url=found["base_url"],
            pagination=found.get("pagination"),
            actions=[Action(**actions.describe(name, e)) for e in found.get("endpoints", [])],
            skill_url=f"{api.public_url}/apps/{name}/skill?lang={lang}",
            skill=skill,
        )

    @server.tool(annotations=_READ)
    async def list_connections(
        ctx: Context,
        app: Annotated[str | None, Field(description="Only this app's")] = None,
        status: Annotated[
            Literal["PENDING", "ACTIVE", "FAILED"] | None, Field(description="Only this status")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
    ) -> ConnectionList:
        """The workspace's connections, oldest first, optionally of one app or status."""
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("app", app), ("status", status), ("cursor", cursor)):
            if value is not None:
                params[name] = value
        try:
            return ConnectionList(**await api_of(ctx).control("GET", "/connections", params=params))
        except KeygateAnswerError as exc:
            _fail(exc)

    @server.tool(annotations=_READ)
    async def get_connection(
        ctx: Context, connection_id: Annotated[str, Field(description="The connection's id")]
    ) -> ConnectionResult:
        """One connection: its status (PENDING until the person authorizes it) and link."""
        try:
            found = await api_of(ctx).control("GET", _connection_path(connection_id))
        except KeygateAnswerError as exc:
            _fail(exc)
        return ConnectionResult(**found)

    @server.tool(annotations=_CREATE)
    async def create_connection(
        ctx: Context,
        app: AppArg,
        method: Annotated[
            Literal["OAUTH2", "API_KEY", "BASIC"] | None,
            Field(description="How to connect; default: the app's first method"),
        ] = None,
    ) -> NewConnection:
        """Start a connection: returns the link the user opens to authorize the app."""
        api = api_of(ctx)
        found = await app_detail(api, app)
        body: dict[str, Any] = {"app": found["app"]}
        if method is not None:
            body["method"] = method
        try:
            connection = (await api.control("POST", "/connections", json=body))["connection"]
        except KeygateAnswerError as exc:
            _fail(exc)
        instruction = calls.connect_instruction(
            found["display_name"], connection["url"], connection["connection_id"], "it is ready"
        )
        return NewConnection(
            connection=connection, connect_url=connection["url"], instruction=instruction
        )

    @server.tool(annotations=_DELETE)
    async def delete_connection(
        ctx: Context, connection_id: Annotated[str, Field(description="The connection's id")]
    ) -> Deleted:
        """Delete a connection (its tokens are revoked at the app where it allows that)."""
        try:
            return Deleted(**await api_of(ctx).control("DELETE", _connection_path(connection_id)))
        except KeygateAnswerError as exc:
            _fail(exc)

    @server.tool(annotations=_READ)
    async def search_actions(
        ctx: Context,
        query: Annotated[str, Field(description="Words to look for, e.g. 'list profiles'")] = "",
        app: Annotated[str | None, Field(description="Only this app's actions")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 20,
    ) -> ActionList:
        """Find named actions (the apps' documented endpoints) to run with run_action."""
        api = api_of(ctx)
        apps = [await app_detail(api, app)] if app else await every_app(api)
        scored = [
            (actions.score(query, a["app"], e), a["app"], e)
            for a in apps
            for e in a.get("endpoints", [])
        ]
        best = sorted((s for s in scored if s[0] > 0), key=lambda s: -s[0])[:limit]
        return ActionList(actions=[Action(**actions.describe(n, e)) for _, n, e in best])

    @server.tool(annotations=_READ)
    async def get_action(
        ctx: Context,
        action: Annotated[str, Field(description="app.action, e.g. klaviyo.get_profiles")],
    ) -> Action:
        """One action: its method, path, parameters (JSON Schema) and an example body."""
        api = api_of(ctx)
        app_name, endpoint = await find_action(api, action)
        return Action(**actions.describe(app_name, endpoint))

    async def find_action(api: KeygateAPI, action: str) -> tuple[str, dict[str, Any]]:
        try:
            app_name, name = actions.split_action(action)
        except actions.ActionInputError as exc:
            raise ToolError(str(exc)) from exc
        found = await app_detail(api, app_name)
        for endpoint in found.get("endpoints", []):
            if endpoint["name"] == name:
                return app_name, endpoint
        raise ToolError(f"{app_name} has no action {name!r}; search_actions lists its actions.")

    @server.tool(annotations=_CALL)
    async def run_action(
        ctx: Context,
        action: Annotated[str, Field(description="app.action, e.g. klaviyo.get_profiles")],
        params: Annotated[
            dict[str, Any] | None, Field(description="The action's path and query parameters")
        ] = None,
        body: BodyArg = None,
        headers: HeadersArg = None,
        connection: ConnectionArg = None,
    ) -> ApiResult:
        """Run a named action through the gateway; the answer is the app's."""
        api = api_of(ctx)
        app_name, endpoint = await find_action(api, action)
        try:
            path, query = actions.build_path(endpoint, params or {})
        except actions.ActionInputError as exc:
            raise ToolError(str(exc)) from exc
        return await call(
            api,
            app_name,
            endpoint["method"],
            calls.with_query(path, query),
            headers,
            body,
            connection,
        )

    @server.tool(annotations=_CALL)
    async def call_api(
        ctx: Context,
        app: AppArg,
        method: Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE"], Field()],
        path: Annotated[
            str,
            Field(description="The app's native path, e.g. /api/profiles (may carry a query)"),
        ],
        query: Annotated[
            dict[str, Scalar | list[Scalar]] | None,
            Field(description="Query parameters to add to the path (a list repeats the name)"),
        ] = None,
        headers: HeadersArg = None,
        body: BodyArg = None,
        connection: ConnectionArg = None,
    ) -> ApiResult:
        """Call any endpoint of an app's own API through the gateway, credentials injected."""
        try:
            target = calls.with_query(calls.check_path(path), query)
        except calls.CallInputError as exc:
            raise ToolError(str(exc)) from exc
        return await call(api_of(ctx), app, method, target, headers, body, connection)

    async def call(
        api: KeygateAPI,
        app: str,
        method: str,
        target: str,
        headers: dict[str, str] | None,
        body: Any,
        connection: str | None,
    ) -> ApiResult:
        found = await app_detail(api, app)
        chosen = await connection_for(api, found["app"], connection)
        try:
            return await calls.send(
                api,
                found,
                method,
                target,
                headers=headers or {},
                body=body,
                connection=chosen,
                limit=body_limit,
            )
        except calls.CallInputError as exc:
            raise ToolError(str(exc)) from exc
        except KeygateAnswerError as exc:
            _fail(exc)

    return server
