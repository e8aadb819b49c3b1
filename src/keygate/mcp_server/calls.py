"""`call_api` and `run_action`: one request through the gateway, made into an `ApiResult`.

When the app has no usable connection the result is a normal one that carries a connect link
and says what to do, so an agent can hand the link to its person instead of failing.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote, urlencode

import orjson

from keygate.mcp_server.keygate_api import KeygateAnswerError, KeygateAPI
from keygate.mcp_server.results import next_page, read_body, useful_headers
from keygate.mcp_server.shapes import ActionNeeded, ApiResult, KeygateErrorInfo

_APP = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Headers the gateway reads as Keygate's own (the key, the connection choice) or that framing
# owns: a tool argument may not set them.
_RESERVED_HEADERS = ("authorization", "maton-connection", "host", "content-length")
_RESERVED_PREFIXES = ("keygate-",)


def connect_instruction(display: str, url: str | None, connection_id: str | None, then: str) -> str:
    """What an agent is to do with a connect link: hand it over unchanged, then check."""
    return (
        "Show this link to the user exactly as it is (do not shorten, rewrite or open it "
        f"yourself) and ask them to open it to connect {display}: {url}\n"
        f"When they are done, call get_connection with connection_id {connection_id}; once its "
        f"status is ACTIVE, {then}."
    )


class CallInputError(ValueError):
    """A call_api argument Keygate would refuse or misread."""


def check_app(app: str) -> str:
    """The app name if it can be one; raises CallInputError."""
    if not _APP.match(app):
        raise CallInputError(
            f"{app!r} is not an app name (lower-case letters, digits, '-'); search_apps lists them."
        )
    return app


def check_path(path: str) -> str:
    """The native path if it is one the tool can send as is; raises CallInputError."""
    if not path.startswith("/"):
        raise CallInputError(f"path must start with '/', e.g. /api/profiles; got {path!r}.")
    if "#" in path or any(ord(c) < 0x21 or ord(c) == 0x7F for c in path):
        raise CallInputError("path may not contain spaces, control characters or '#'.")
    segments = unquote(path.partition("?")[0]).split("/")
    if any(segment in (".", "..") for segment in segments):
        raise CallInputError("path may not contain '.' or '..' segments.")
    return path


def request_headers(headers: dict[str, str] | None, connection: str | None) -> dict[str, str]:
    """The caller's extra headers, checked, plus the connection choice."""
    sent: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lower = name.lower()
        if lower in _RESERVED_HEADERS or lower.startswith(_RESERVED_PREFIXES):
            raise CallInputError(
                f"header {name!r} is Keygate's to set: the key is added for you, and the "
                "connection argument chooses the connection."
            )
        sent[name] = value
    if connection:
        sent["Maton-Connection"] = connection
    return sent


def encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    """The request body: JSON for objects and arrays, a string as it is (text)."""
    if body is None:
        return None
    has_type = any(name.lower() == "content-type" for name in headers)
    if isinstance(body, str):
        if not has_type:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return body.encode()
    if not has_type:
        headers["Content-Type"] = "application/json"
    return orjson.dumps(body)


def with_query(path: str, query: dict[str, Any] | None) -> str:
    """The path with the query arguments appended (lists repeat the name)."""
    if not query:
        return path
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            pairs.append((name, str(item)))
    encoded = urlencode(pairs, quote_via=quote, safe="[]")
    return path + ("&" if "?" in path else "?") + encoded


async def connect_link(api: KeygateAPI, app: dict[str, Any]) -> ActionNeeded:
    """A fresh connect link for the app: an existing PENDING connection's, else a new one's."""
    name = app["app"]
    pending = await api.control(
        "GET", "/connections", params={"app": name, "status": "PENDING", "limit": 1}
    )
    if pending["connections"]:
        connection = pending["connections"][0]
    else:
        connection = (await api.control("POST", "/connections", json={"app": name}))["connection"]
    return _needed(app, connection["connection_id"], connection["url"])


def _needed(app: dict[str, Any], connection_id: str | None, url: str | None) -> ActionNeeded:
    instruction = connect_instruction(
        app["display_name"], url, connection_id, "make this call again"
    )
    return ActionNeeded(
        app=app["app"], connection_id=connection_id, connect_url=url, instruction=instruction
    )


async def _action_needed(
    api: KeygateAPI, app: dict[str, Any], code: str, error: dict[str, Any], chosen: str | None
) -> ActionNeeded | None:
    """What a person must do about a connection error, with the link to do it."""
    if code == "no_active_connection":
        return await connect_link(api, app)
    if code == "reauthorization_required":
        return _needed(app, chosen, error.get("reconnect_url"))
    if code == "connection_not_active" and chosen:
        connection = (await api.control("GET", f"/connections/{quote(chosen, safe='')}"))[
            "connection"
        ]
        return _needed(app, chosen, connection.get("url"))
    return None


async def send(
    api: KeygateAPI,
    app: dict[str, Any],
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    body: Any,
    connection: str | None,
    limit: int,
) -> ApiResult:
    """Send one gateway request for `app` (its `GET /apps/{app}` object) and shape the answer."""
    sent = request_headers(headers, connection)
    content = encode_body(body, sent)
    exchange = await api.gateway(
        method, f"/{app['app']}{path}", headers=sent, content=content, limit=limit
    )
    parsed, note = read_body(exchange, limit)
    used = exchange.headers.get("keygate-connection") or connection
    result = ApiResult(
        status=exchange.status,
        ok=200 <= exchange.status < 300,
        headers=useful_headers(exchange),
        body=parsed,
        truncated=exchange.truncated,
        note=note,
        connection_id=used,
    )
    code = exchange.headers.get("keygate-error")
    if code is not None:
        error = parsed.get("error", {}) if isinstance(parsed, dict) else {}
        result.error = KeygateErrorInfo(code=code, message=str(error.get("message", "")))
        try:
            result.action_needed = await _action_needed(api, app, code, error, used)
        except KeygateAnswerError as exc:
            result.note = f"No connect link could be made: {exc}"
    elif result.ok and method == "GET":
        result.next = next_page(app, parsed, used)
    return result
