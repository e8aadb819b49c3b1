"""What every Constant Contact `/v3` call passes first, and the shared error/paging helpers.

Order: bearer token (401 object body), scope (403), throttling per token (429 `throttled` at
4 requests/s, `quota_exceeded` at 10,000/day; no `Retry-After`, no rate-limit headers).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.constant_contact.store import ConstantContactState
from keygate.sandbox.ratelimit import Window

Handler = Callable[[Request, ConstantContactState], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")

_PER_SECOND = Window(4, 1, "throttled")
_PER_DAY = Window(10_000, 86_400, "quota_exceeded")


class CCError(Exception):
    """A Constant Contact error answer: status plus `[{"error_key","error_message"}]`."""

    def __init__(self, status: int, error_key: str, error_message: str) -> None:
        super().__init__(error_message)
        self.status = status
        self.error_key = error_key
        self.error_message = error_message

    def response(self) -> Response:
        """Render the error as the array body Constant Contact sends."""
        body = [{"error_key": self.error_key, "error_message": self.error_message}]
        return JSONResponse(body, status_code=self.status)


def _unauthorized() -> Response:
    # The 401 body is a bare object, unlike every other error.
    body = {"error_key": "unauthorized", "error_message": "Unauthorized"}
    return JSONResponse(body, status_code=401)


def _throttle(sandbox: ConstantContactState, token: str) -> Response | None:
    if not sandbox.config.rate_limit:
        return None
    decision = sandbox.limiter.hit(f"token:{token}", (_PER_SECOND, _PER_DAY))
    if decision.allowed:
        return None
    sandbox.stats.throttled_calls += 1
    if decision.window.name == "quota_exceeded":
        body = {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}
    else:
        body = {"error_key": "throttled", "error_message": "Too Many Requests"}
    return JSONResponse(body, status_code=429)


def cc_endpoint(scope: str) -> Callable[[Handler], Endpoint]:
    """Wrap a handler with token, scope and throttling checks; `CCError` becomes its body."""

    def decorate(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            sandbox = request.app.state.sandbox
            if not isinstance(sandbox, ConstantContactState):
                raise TypeError("app.state.sandbox is not a ConstantContactState")
            sandbox.stats.api_calls += 1
            authorization = request.headers.get("authorization", "")
            grant = sandbox.bearer_grant(authorization)
            if grant is None:
                return _unauthorized()
            if scope not in grant.scopes:
                message = f"This request requires the {scope} scope."
                return CCError(403, "forbidden", message).response()
            throttled = _throttle(sandbox, authorization.partition(" ")[2].strip())
            if throttled is not None:
                return throttled
            try:
                return await handler(request, sandbox)
            except CCError as exc:
                return exc.response()

        return endpoint

    return decorate


async def read_body(request: Request, resource: str) -> dict[str, Any]:
    """Read a JSON object request body, or raise 415/400 with `<resource>.api.*` keys."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        message = "Content-Type must be application/json."
        raise CCError(415, f"{resource}.api.unsupported.media.type", message)
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise CCError(400, f"{resource}.api.bad.request", "Malformed JSON body.") from exc
    if not isinstance(body, dict):
        raise CCError(400, f"{resource}.api.bad.request", "The body must be a JSON object.")
    return body


def query_bool(request: Request, name: str, resource: str) -> bool:
    """Read a boolean query parameter (`true`/`false`), or raise 400."""
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise CCError(400, f"{resource}.api.bad.request", f"{name} must be true or false.")
    return raw == "true"


def query_limit(params: dict[str, str], default: int, maximum: int, resource: str) -> int:
    """Read `limit` within 1..maximum, or raise 400."""
    raw = params.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        message = f"limit must be an integer between 1 and {maximum}."
        raise CCError(400, f"{resource}.api.bad.request", message)
    return int(raw)


def query_params(request: Request, resource: str) -> tuple[dict[str, str], int]:
    """Return (query parameters, offset); a `cursor` replaces the query it was issued for."""
    params = dict(request.query_params)
    cursor = params.pop("cursor", None)
    if cursor is None:
        return params, 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = dict(parse_qsl(base64.urlsafe_b64decode(padded).decode(), strict_parsing=True))
        offset = int(decoded.pop("next"))
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise CCError(400, f"{resource}.api.bad.request", "Invalid cursor.") from exc
    return decoded, offset


def paginate(
    path: str, params: dict[str, str], items: Sequence[T], offset: int, limit: int
) -> tuple[Sequence[T], dict[str, Any] | None]:
    """Slice one page; return it with `_links` (`next.href` = `/v3/…?cursor=…`) or None."""
    page = items[offset : offset + limit]
    if offset + limit >= len(items):
        return page, None
    state = urlencode({**params, "limit": str(limit), "next": str(offset + limit)})
    cursor = base64.urlsafe_b64encode(state.encode()).decode().rstrip("=")
    return page, {"next": {"href": f"{path}?{urlencode({'cursor': cursor})}"}}
