"""`/connections`: list, create, show and delete the caller's connections."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keygate.catalog.model import AppSpec, Method
from keygate.control.auth import CallerDep
from keygate.control.deps import (
    Apps,
    AppsDep,
    CipherDep,
    ConnectionsDep,
    PublicUrlDep,
    ReadsDep,
    UpstreamDep,
)
from keygate.control.openapi import (
    MAX_METADATA_BYTES,
    ConnectionEnvelope,
    ConnectionPage,
    error_responses,
    success,
)
from keygate.control.views import connection_view, decode_cursor, encode_cursor
from keygate.errors import (
    BadRequest,
    ConnectionNotFound,
    UnknownAppInRequest,
    UnsupportedMethodError,
    describe_validation,
)
from keygate.oauth.revoke import revoke_connection
from keygate.store.connections import ConnectionFilter
from keygate.store.events import key_actor
from keygate.store.records import Status

log = logging.getLogger("keygate.control")
router = APIRouter(tags=["connections"])


class CreateConnection(BaseModel):
    """The body of `POST /connections`."""

    model_config = ConfigDict(extra="forbid")

    app: str = Field(min_length=1, max_length=63)
    method: Method | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    scopes: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=100
    )
    params: dict[str, Any] = Field(default_factory=dict, max_length=50)

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(orjson.dumps(value)) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata may be at most {MAX_METADATA_BYTES} bytes of JSON")
        return value


def _known_app(apps: Apps, app: str) -> None:
    if app not in apps:
        known = ", ".join(sorted(apps))
        raise UnknownAppInRequest(f"Unknown app {app!r}. Known apps: {known}.")


def _checked_params(spec: AppSpec, kind: Method, given: dict[str, Any]) -> dict[str, str]:
    """The connection parameters given, each checked against the app's declaration, and the
    defaults of those left out; a 400 naming the first that is unknown or does not fit. Those
    neither given nor defaulted are asked on the connect page."""
    method = spec.method(kind)
    assert method is not None
    try:
        return spec.connection_params(method, given)
    except ValueError as exc:
        raise BadRequest(f"{exc}.") from None


def _connection_id(value: str) -> str:
    """The id if it can name a connection (a canonical UUID); else ConnectionNotFound.

    Checked before the database sees it: an id with a NUL byte would make PostgreSQL fail.
    """
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        raise ConnectionNotFound from None
    if canonical != value:
        raise ConnectionNotFound
    return value


@router.get(
    "/connections",
    summary="List connections, oldest first",
    response_model=None,
    responses={**success(ConnectionPage, "A page."), **error_responses(400, 401, 503)},
)
async def list_connections(
    connections: ConnectionsDep,
    apps: AppsDep,
    cipher: CipherDep,
    public_url: PublicUrlDep,
    caller: CallerDep,
    app: str | None = None,
    status: Annotated[str | None, Query(description="PENDING, ACTIVE or FAILED")] = None,
    method: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The caller's workspace's connections, filtered and paginated."""
    if app is not None:
        _known_app(apps, app)
    try:
        status_filter = Status(status) if status is not None else None
        method_filter = Method(method).value if method is not None else None
    except ValueError as exc:
        raise BadRequest(
            "status must be PENDING, ACTIVE or FAILED; method must be OAUTH2, API_KEY or BASIC."
        ) from exc
    if status_filter is Status.DELETED:
        raise BadRequest("Deleted connections are gone; status must be PENDING, ACTIVE or FAILED.")
    after = decode_cursor(cursor) if cursor else 0
    rows, more = await connections.list(
        caller.workspace_id, ConnectionFilter(app, status_filter, method_filter), limit, after
    )
    return {
        "connections": [connection_view(r, public_url, cipher) for r in rows],
        "next_cursor": encode_cursor(rows[-1].seq) if more and rows else None,
    }


async def parse_create(request: Request) -> CreateConnection:
    """The JSON body of a create call (any content type), or a 400 a person can act on."""
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest('The body must be a JSON object, e.g. {"app": "klaviyo"}.')
    try:
        return CreateConnection.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc)) from None


@router.post(
    "/connections",
    status_code=201,
    summary="Create a PENDING connection",
    response_model=None,
    # The body is read by parse_create (any content type); control.openapi documents it.
    responses={
        201: {"model": ConnectionEnvelope, "description": "The new PENDING connection."},
        **error_responses(400, 401, 413, 503),
    },
)
async def create_connection(
    request: Request,
    connections: ConnectionsDep,
    apps: AppsDep,
    cipher: CipherDep,
    public_url: PublicUrlDep,
    caller: CallerDep,
) -> JSONResponse:
    """A new PENDING connection whose `url` a person opens to authorize it."""
    body = await parse_create(request)
    _known_app(apps, body.app)
    spec = apps[body.app].spec
    method = body.method or spec.methods[0].type
    if spec.method(method) is None:
        raise UnsupportedMethodError(
            f"{body.app} does not support {method.value}; it supports "
            f"{', '.join(spec.method_names)}."
        )
    if body.scopes is not None and method is not Method.OAUTH2:
        raise BadRequest("scopes apply to OAUTH2 connections only.")
    params = _checked_params(spec, method, body.params)
    record = await connections.create(
        caller.workspace_id,
        body.app,
        method.value,
        body.metadata,
        body.scopes,
        params,
        actor=key_actor(caller.prefix),
    )
    log.info("connection %s created (%s, %s)", record.id, record.app, record.method)
    view = connection_view(record, public_url, cipher)
    return JSONResponse({"connection": view}, status_code=201)


@router.get(
    "/connections/{connection_id}",
    summary="Show a connection",
    response_model=None,
    responses={**success(ConnectionEnvelope, "The connection."), **error_responses(401, 404, 503)},
)
async def get_connection(
    connection_id: str,
    connections: ConnectionsDep,
    cipher: CipherDep,
    public_url: PublicUrlDep,
    caller: CallerDep,
) -> dict[str, Any]:
    """One connection of the caller's workspace (another workspace's id is a 404)."""
    record = await connections.get(_connection_id(connection_id), caller.workspace_id)
    if record is None:
        raise ConnectionNotFound
    return {"connection": connection_view(record, public_url, cipher)}


@router.delete(
    "/connections/{connection_id}",
    summary="Delete a connection",
    response_model=None,
    responses={
        **success(ConnectionEnvelope, "The connection as it was, with status DELETED."),
        **error_responses(401, 404, 503),
    },
)
async def delete_connection(
    connection_id: str,
    connections: ConnectionsDep,
    apps: AppsDep,
    reads: ReadsDep,
    upstream: UpstreamDep,
    cipher: CipherDep,
    public_url: PublicUrlDep,
    caller: CallerDep,
) -> dict[str, Any]:
    """Revoke upstream tokens where the provider can (best effort), then forget the connection."""
    record = await connections.get(_connection_id(connection_id), caller.workspace_id)
    if record is None:
        raise ConnectionNotFound
    await revoke_connection(record, apps.get(record.app), connections=connections, client=upstream)
    await connections.delete(record.id, actor=key_actor(caller.prefix))
    reads.forget_connection(record.id)
    log.info("connection %s deleted (%s)", record.id, record.app)
    view = connection_view(record, public_url, cipher, deleted=True)
    return {"connection": view}
