"""Klaviyo's JSON:API conventions: media type, error objects, cursors and absolute links."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

MEDIA_TYPE = "application/vnd.api+json"
"""The JSON:API media type Klaviyo answers with."""


class KlaviyoError(Exception):
    """One JSON:API error answer; rendered in one place by `error_response`."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        source: dict[str, str] | None = None,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.source = source or {}
        self.meta = meta or {}
        self.headers = headers or {}


def invalid(
    detail: str, *, pointer: str | None = None, parameter: str | None = None
) -> KlaviyoError:
    """Build Klaviyo's generic 400 `invalid` error pointing at a body field or parameter."""
    source = {"pointer": pointer} if pointer else {"parameter": parameter} if parameter else {}
    return KlaviyoError(400, "invalid", "Invalid input.", detail, source)


def not_found(detail: str) -> KlaviyoError:
    """Build a 404 `not_found` error."""
    return KlaviyoError(404, "not_found", "Not found.", detail)


def jsonapi_response(
    body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialise a JSON:API document (or an empty 204) with Klaviyo's media type."""
    if body is None:
        return Response(status_code=status, headers=headers)
    content = json.dumps(body, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def error_response(error: KlaviyoError) -> Response:
    """Render a `KlaviyoError` as `{"errors": [{id, status, code, title, detail, …}]}`."""
    item = {
        "id": str(uuid.uuid4()),
        "status": error.status,
        "code": error.code,
        "title": error.title,
        "detail": error.detail,
        "source": error.source,
        "meta": error.meta,
    }
    return jsonapi_response({"errors": [item]}, error.status, error.headers)


def encode_cursor(offset: int) -> str:
    """Return an opaque page cursor for a list offset."""
    return base64.urlsafe_b64encode(f"next::{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Return the offset inside a page cursor, or raise 400 `invalid`."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        prefix, _, offset = text.partition("::")
        if prefix != "next" or not offset.isdigit():
            raise ValueError(cursor)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise invalid("Invalid page cursor.", parameter="page[cursor]") from exc
    return int(offset)


def page_size(request: Request, default: int, maximum: int) -> int:
    """Read `page[size]` within 1..maximum, or raise 400 `invalid`."""
    raw = request.query_params.get("page[size]")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        detail = f"page[size] must be an integer between 1 and {maximum}."
        raise invalid(detail, parameter="page[size]")
    return int(raw)


def resource_url(origin: str, path: str) -> str:
    """Return the absolute URL of a resource path (Klaviyo's links end in a slash)."""
    return f"{origin}{path.rstrip('/')}/"


def page_links(request: Request, origin: str, offset: int, size: int, total: int) -> dict[str, str]:
    """Return `links.self/next/prev` as absolute URLs with an encoded `page[cursor]`."""
    base = resource_url(origin, request.url.path)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page[cursor]"]

    def with_cursor(cursor_offset: int | None) -> str:
        extra = [] if cursor_offset is None else [("page[cursor]", encode_cursor(cursor_offset))]
        query = urlencode(params + extra)
        return f"{base}?{query}" if query else base

    links = {"self": with_cursor(offset or None)}
    if offset + size < total:
        links["next"] = with_cursor(offset + size)
    if offset > 0:
        links["prev"] = with_cursor(max(0, offset - size) or None)
    return links
