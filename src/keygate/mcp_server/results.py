"""A gateway answer made into a tool result: the useful headers, a readable body, what next.

What an agent needs from an answer is its status, the headers that change what it does next
(content type, request id, retry and rate-limit hints), the body as data it can read, and, when
the app's pagination is known, the next page as arguments ready for `call_api`.
"""

from __future__ import annotations

import codecs
from typing import Any

import orjson

from keygate.catalog.pagination import gateway_path, next_link
from keygate.mcp_server.keygate_api import Exchange

_KEPT_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "x-request-id",
    "keygate-connection",
    "keygate-error",
)
_RATE_LIMIT_PREFIXES = ("ratelimit", "x-ratelimit", "x-rate-limit")
_TEXT_TYPES = (
    "text/",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/javascript",
    "application/x-ndjson",
)


def useful_headers(exchange: Exchange) -> dict[str, str]:
    """The answer's headers an agent acts on (everything else is transport detail)."""
    kept: dict[str, str] = {}
    for name, value in exchange.headers.items():
        lower = name.lower()
        if lower in _KEPT_HEADERS or lower.startswith(_RATE_LIMIT_PREFIXES):
            kept[lower] = value
    return kept


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            try:
                return codecs.lookup(value.strip('"')).name
            except LookupError:
                break
    return "utf-8"


def _binary_note(media: str, exchange: Exchange) -> str:
    size = f"{exchange.size} bytes" if exchange.size is not None else "a large body"
    return (
        f"The body is binary ({media or 'no content type'}, {size}); this tool returns only JSON "
        "and text. Fetch it from the gateway directly if you need the bytes."
    )


def read_body(exchange: Exchange, limit: int) -> tuple[Any, str | None]:
    """(body, note): parsed JSON, text, or None with a note saying why it is not shown.

    A body cut at the limit is shown as text (its JSON would not parse), with a note.
    """
    content_type = exchange.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    raw = exchange.body
    if not raw:
        return None, None
    textual = _is_json(content_type) or media.startswith(_TEXT_TYPES) or media.endswith("+xml")
    if media and not textual:
        return None, _binary_note(media, exchange)
    if exchange.truncated:
        note = (
            f"The body is longer than {limit} bytes: only its first {limit} are shown, as text. "
            "Ask for less (a smaller page size, fewer fields or a filter)."
        )
        return raw.decode(_charset(content_type), errors="replace"), note
    if _is_json(content_type) or not media:
        try:
            return orjson.loads(raw), None
        except orjson.JSONDecodeError:
            if media:
                return raw.decode("utf-8", errors="replace"), "The body is not valid JSON."
    try:
        return raw.decode(_charset(content_type)), None
    except UnicodeDecodeError:
        return None, _binary_note(media, exchange)


def next_page(app: dict[str, Any], body: Any, connection: str | None) -> dict[str, Any] | None:
    """The next page's `call_api` arguments, when the app's pagination says where to look."""
    pagination = app.get("pagination")
    if not pagination or not isinstance(body, dict):
        return None
    link = next_link(body, pagination["next"])
    if link is None:
        return None
    name = app["app"]
    target = gateway_path(name, link, pagination["link"], app["base_url"])
    arguments: dict[str, Any] = {"app": name, "method": "GET", "path": target[len(name) + 1 :]}
    if connection:
        arguments["connection"] = connection
    return arguments
