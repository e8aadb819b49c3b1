"""What the tools return: each model is a tool's output JSON Schema, published in tools/list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ConnectionFailure(BaseModel):
    """Why a FAILED connection failed."""

    code: str | None = None
    message: str | None = None


class Connection(BaseModel):
    """A connection, as the control plane shows it (credentials never appear)."""

    connection_id: str
    status: str = Field(description="PENDING, ACTIVE, FAILED (or DELETED, once deleted)")
    app: str
    method: str
    creation_time: str
    last_updated_time: str
    url: str | None = Field(
        default=None, description="A connect link (single use) to authorize or re-authorize it"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: ConnectionFailure | None = None


class WhoAmI(BaseModel):
    """Which Keygate the key reaches, and what its workspace holds."""

    keygate_url: str
    authenticated: bool
    apps: list[str]
    connections: dict[str, dict[str, int]] = Field(
        description="Per app, how many connections the workspace has in each status"
    )
    default_connection: str | None = Field(
        default=None, description="The connection used when a call names none (keygate mcp)"
    )


class AppBrief(BaseModel):
    """One app of the catalog."""

    app: str
    display_name: str
    methods: list[str] = Field(description="Connection methods, the default first")
    docs_url: str
    active_connections: int


class AppList(BaseModel):
    """The apps that matched."""

    apps: list[AppBrief]


class Action(BaseModel):
    """One catalog endpoint as a named action for `run_action`."""

    action: str = Field(description="app.action, the name run_action takes")
    app: str
    method: str
    path: str = Field(description="The native path template; {name} are path parameters")
    summary: str
    summary_zh: str
    params_schema: dict[str, Any] = Field(description="JSON Schema of run_action's params")
    body_example: Any = None
    paginated: bool


class ActionList(BaseModel):
    """The actions that matched, best first."""

    actions: list[Action]


class AppDetail(BaseModel):
    """One app: how to connect, how it paginates, its actions and its skill."""

    app: str
    display_name: str
    methods: list[str]
    docs_url: str
    base_url: str
    pagination: dict[str, Any] | None
    actions: list[Action]
    skill_url: str = Field(description="The app's agent skill (markdown) on this Keygate")
    skill: str = Field(description="The skill text (markdown, YAML front matter first)")


class ConnectionList(BaseModel):
    """A page of the workspace's connections, oldest first."""

    connections: list[Connection]
    next_cursor: str | None = None


class ConnectionResult(BaseModel):
    """One connection."""

    connection: Connection


class NewConnection(BaseModel):
    """A new PENDING connection and the link a person opens to authorize it."""

    connection: Connection
    connect_url: str
    instruction: str


class ActionNeeded(BaseModel):
    """What must happen before the call can succeed: a person opens a link."""

    app: str
    connection_id: str | None
    connect_url: str | None
    instruction: str


class KeygateErrorInfo(BaseModel):
    """An error Keygate answered itself (not the app's own error)."""

    code: str
    message: str


class ApiResult(BaseModel):
    """An answer from the app through the gateway (or Keygate's own error in its place)."""

    status: int
    ok: bool = Field(description="Whether the status is 2xx")
    headers: dict[str, str] = Field(
        description="Content type, request id, connection used, retry and rate-limit headers"
    )
    body: Any = Field(default=None, description="Parsed JSON, text, or null (see note)")
    truncated: bool = False
    note: str | None = None
    error: KeygateErrorInfo | None = None
    connection_id: str | None = Field(default=None, description="The connection used")
    next: dict[str, Any] | None = Field(
        default=None, description="call_api arguments that fetch the next page"
    )
    action_needed: ActionNeeded | None = None


class Deleted(BaseModel):
    """The connection as it was, with status DELETED."""

    connection: Connection
