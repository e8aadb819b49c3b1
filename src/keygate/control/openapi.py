"""The OpenAPI document at `/openapi.json`: exactly what the control plane accepts and answers.

FastAPI derives most of it from the routes. This module adds what the routes cannot say:
- the errors Keygate answers (`400 invalid_request` where FastAPI would document 422, and the
  401/404/413/503 bodies, each with its `Keygate-Error` header);
- the API-key security scheme (`Authorization: Bearer kg_…`);
- what follows this deployment's catalog: which apps a `POST /connections` body or an `app=`
  filter may name, and which methods each app takes.

A client generated from the document, or a fuzzer driven by it, then never sends a request the
document calls valid that Keygate refuses, nor one it calls invalid that Keygate takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from keygate.catalog.model import Category, Method
from keygate.control.views import CURSOR_PATTERN
from keygate.store.events import EventType
from keygate.webhooks.destinations import URL_PATTERN

API_KEY_SCHEME = HTTPBearer(
    scheme_name="KeygateApiKey",
    bearerFormat="kg_…",
    description="A Keygate API key (`keygate keys create`), sent as `Authorization: Bearer kg_…`.",
    auto_error=False,  # the caller dependency answers 401 itself, as JSON with Keygate-Error
)
"""Declares the scheme in the document; `control.auth.get_caller` does the checking."""

MAX_METADATA_BYTES = 16 * 1024


class ErrorDetail(BaseModel):
    """The `error` member of every Keygate error body."""

    model_config = ConfigDict(extra="allow")  # some errors add a field, e.g. reconnect_url

    code: str = Field(description="Stable snake_case code, also in the Keygate-Error header.")
    message: str = Field(description="What went wrong and what to do about it.")
    status: int = Field(description="The HTTP status of the response.")


class ErrorBody(BaseModel):
    """A Keygate error: `{"error": {"code", "message", "status"}}`."""

    error: ErrorDetail


class FailureReason(BaseModel):
    """Why a connection is FAILED."""

    code: str | None
    message: str | None


class ConnectionOut(BaseModel):
    """The contract's connection object; credentials never appear in it."""

    connection_id: str
    status: Literal["PENDING", "ACTIVE", "FAILED", "DELETED"]
    creation_time: str = Field(description="UTC ISO 8601 with microseconds and Z.")
    last_updated_time: str = Field(description="UTC ISO 8601 with microseconds and Z.")
    url: str | None = Field(description="A connect link with a fresh single-use session token.")
    app: str
    method: Method
    metadata: dict[str, Any]
    params: dict[str, str] = Field(
        default_factory=dict,
        description="The connection parameters (the app's `params`: shop, subdomain…).",
    )
    error: FailureReason | None = Field(default=None, description="Only on FAILED connections.")


class ConnectionEnvelope(BaseModel):
    """One connection."""

    connection: ConnectionOut


class ConnectionPage(BaseModel):
    """A page of connections, oldest first."""

    connections: list[ConnectionOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class AppOut(BaseModel):
    """The contract's app object."""

    app: str
    display_name: str
    category: Category | None = Field(description="What the app is for (null: uncategorised).")
    methods: list[Method] = Field(description="The connection methods, the default first.")
    docs_url: str
    base_url: str
    oauth_client_configured: bool = Field(
        description="The operator has configured an OAuth client for the app's OAUTH2 method "
        "(false for an app without one): OAuth connections can be made."
    )


class EndpointOut(BaseModel):
    """One catalog endpoint of an app (an action agents can search and run)."""

    name: str
    method: str
    path: str
    summary: dict[str, str] = Field(description="`en` and `zh`.")
    params: list[dict[str, Any]]
    body: Any = None
    paginated: bool
    items: str | None = None


class ParamOut(BaseModel):
    """A connection parameter an app's method asks for."""

    name: str
    label: str
    pattern: str = Field(description="The whole value must match (and be letters, digits, ._~-).")
    example: str
    default: str | None = Field(
        default=None, description="The value a connection gets when `params` leaves it out."
    )
    help: str | None = None


class AppDetailOut(AppOut):
    """One app with its connection parameters, pagination and catalog endpoints."""

    params: dict[str, list[ParamOut]] = Field(
        default_factory=dict,
        description="Per method, the parameters `POST /connections` takes as `params`.",
    )

    pagination: dict[str, Any] | None = Field(
        default=None,
        description="How list responses link their next page: `next` (dotted path to the link "
        "in the body), `link` (`absolute` URL or `relative` to the base URL's root), `items`.",
    )
    endpoints: list[EndpointOut]


class AppList(BaseModel):
    """Every app of the catalog."""

    apps: list[AppOut]


class AppEnvelope(BaseModel):
    """One app."""

    app: AppDetailOut


_ERRORS: dict[int, str] = {
    400: "Bad request (`invalid_request`, `invalid_header`, `unknown_app`, `unsupported_method`, "
    "`invalid_cursor`). A request that is not valid HTTP at all (say, an empty `Content-Length`) "
    "is refused by the HTTP server before Keygate reads it: a plain-text 400 without "
    "`Keygate-Error`.",
    401: "Missing or invalid Keygate API key (`invalid_api_key`).",
    404: "Unknown id or name (`connection_not_found`, `unknown_app`).",
    413: "The body is over `KEYGATE_MAX_CONTROL_BODY` bytes (`body_too_large`).",
    429: "Over a rate limit (`rate_limited`): the control plane's per-address limit, or the "
    "limit on failed API-key lookups; retry after `Retry-After` seconds.",
    503: "The database is unreachable (`store_unavailable`); retry after `Retry-After` seconds.",
}

_ALWAYS = (400, 429)
"""Statuses any control-plane operation can answer: a malformed request, a rate limit."""


def _header(description: str, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string"}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` entries for Keygate's JSON errors of these statuses (and of the
    statuses every operation can answer)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, *_ALWAYS}):
        # A 400 may come from the HTTP server itself (plain text, no Keygate-Error).
        headers = {"Keygate-Error": _header("The error code, as in the body.", status != 400)}
        if status == 401:
            headers["WWW-Authenticate"] = _header('`Bearer realm="keygate"`.')
        if status in (429, 503):
            headers["Retry-After"] = _header("Seconds to wait before retrying.")
        entry: dict[str, Any] = {
            "model": ErrorBody,
            "description": _ERRORS[status],
            "headers": headers,
        }
        if status == 400:
            entry["content"] = {"text/plain": {"schema": {"type": "string"}}}
        responses[status] = entry
    return responses


def success(model: type[BaseModel], description: str) -> dict[int | str, dict[str, Any]]:
    """A `responses=` entry documenting a success body without FastAPI re-validating it."""
    return {200: {"model": model, "description": description}}


_METADATA = {
    "type": "object",
    "additionalProperties": True,
    "description": f"Any JSON object of at most {MAX_METADATA_BYTES} bytes; returned as given.",
}
_SCOPES = {
    "anyOf": [
        {
            "type": "array",
            "maxItems": 100,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        {"type": "null"},
    ],
    "description": "OAuth scopes to request instead of the catalog's (OAUTH2 only).",
}


ParamPatterns = Mapping[tuple[str, str], Mapping[str, str]]
"""(app, method) → {parameter name: pattern} of the connection parameters it takes."""


def _params_schema(patterns: Mapping[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            name: {"type": "string", "pattern": f"^(?:{pattern})$", "minLength": 1}
            for name, pattern in patterns.items()
        },
        "additionalProperties": False,
        "description": "The app's connection parameters (GET /apps/{app} lists them), each "
        "matching its pattern; those left out are asked on the connect page.",
    }


def create_body_schema(
    methods_by_app: Mapping[str, Sequence[str]], params: ParamPatterns | None = None
) -> dict[str, Any]:
    """The `POST /connections` body: one variant per app and method this deployment has.

    An app's first method is its default, so `method` may be left out (or null) for it; the
    others must be named. `scopes` exists only on OAUTH2 variants, as Keygate refuses it
    elsewhere.
    """
    if not methods_by_app:  # no catalog (a document built without start-up): the bare shape
        return {
            "title": "CreateConnection",
            "type": "object",
            "properties": {"app": {"type": "string"}, "method": {"enum": [*Method, None]}},
            "required": ["app"],
        }
    variants = []
    for app, methods in sorted(methods_by_app.items()):
        for index, method in enumerate(methods):
            properties: dict[str, Any] = {
                "app": {"const": app},
                "method": {"enum": [method, None]} if index == 0 else {"const": method},
                "metadata": _METADATA,
                "params": _params_schema((params or {}).get((app, method), {})),
            }
            if method == Method.OAUTH2.value:
                properties["scopes"] = _SCOPES
            variants.append(
                {
                    "title": f"{app} {method}" + (" (default)" if index == 0 else ""),
                    "type": "object",
                    "properties": properties,
                    "required": ["app"] if index == 0 else ["app", "method"],
                    "additionalProperties": False,
                }
            )
    return {
        "title": "CreateConnection",
        "description": "The app to connect, its method (the app's first by default), metadata.",
        "anyOf": variants,
    }


def _list_parameters(apps: Sequence[str]) -> dict[str, dict[str, Any]]:
    app: dict[str, Any] = {"type": "string", "enum": list(apps)}
    return {
        "app": {**app, "description": "Only this app's connections."},
        "status": {"type": "string", "enum": ["PENDING", "ACTIVE", "FAILED"]},
        "method": {"type": "string", "enum": [m.value for m in Method]},
        "cursor": {
            "type": "string",
            "pattern": f"^({CURSOR_PATTERN})?$",
            "description": "`next_cursor` of the previous page; empty or absent: the first page.",
        },
    }


_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO-8601, e.g. 2026-12-01T10:00:00Z",
}
_RECORD_PARAMETERS: dict[str, dict[str, Any]] = {
    "status": {
        "type": "string",
        "pattern": "^([1-5][xX][xX])?$",
        "description": "A status class: 2xx, 4xx, 5xx…",
    },
    "since": _TIME,
    "until": _TIME,
    "type": {"type": "string", "enum": [t.value for t in EventType]},
}
_WEBHOOK_BODY = {
    "title": "CreateWebhook",
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "maxLength": 2048,
            "pattern": URL_PATTERN,
            "description": "An http:// or https:// URL (the operator may restrict destinations).",
        },
        "event_types": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {"type": "string", "enum": [t.value for t in EventType]},
            "description": "The event types to deliver (default: all).",
        },
    },
    "required": ["url"],
    "additionalProperties": False,
}


def build_openapi(
    api: FastAPI, methods_by_app: Mapping[str, Sequence[str]], params: ParamPatterns | None = None
) -> dict[str, Any]:
    """The document for `api`, with the catalog-dependent parts for these apps and methods."""
    doc = get_openapi(
        title=api.title, version=api.version, description=api.description, routes=api.routes
    )
    for path_item in doc["paths"].values():
        for operation in path_item.values():
            # Keygate answers a validation failure 400 invalid_request, documented per route.
            operation["responses"].pop("422", None)
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    connections = doc["paths"]["/connections"]
    connections["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": create_body_schema(methods_by_app, params)}},
    }
    exact = _list_parameters(sorted(methods_by_app))
    for parameter in connections["get"]["parameters"]:
        if parameter["name"] in exact:
            parameter["schema"] = exact[parameter["name"]]
    record = {**_RECORD_PARAMETERS, "cursor": exact["cursor"]}
    for path in ("/logs", "/events"):
        for parameter in doc["paths"].get(path, {}).get("get", {}).get("parameters", []):
            if parameter["name"] in record:
                parameter["schema"] = record[parameter["name"]]
    if "/webhooks" in doc["paths"]:
        doc["paths"]["/webhooks"]["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _WEBHOOK_BODY}},
        }
    return doc


def install(
    api: FastAPI,
    methods_by_app: Callable[[], Mapping[str, Sequence[str]]],
    params: Callable[[], ParamPatterns] | None = None,
) -> None:
    """Serve `build_openapi` as `api`'s document, built once on first use (the catalog is
    known only after start-up)."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            patterns = params() if params is not None else None
            api.openapi_schema = build_openapi(api, methods_by_app(), patterns)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
