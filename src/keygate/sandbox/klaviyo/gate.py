"""What every Klaviyo API call passes first: credentials, `revision`, scopes, rate limits.

Order: authentication (401), revision (400 missing/malformed, 404 outside the supported range),
scope (403), rate limit (429 with `Retry-After`). The supported range runs from Klaviyo's first
stable revision to the newest revision published by the sandbox's current date. Answers that
get past the rate limiter carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keygate.sandbox.klaviyo.jsonapi import KlaviyoError, error_response, invalid
from keygate.sandbox.klaviyo.store import ACCOUNT_ID, KlaviyoState
from keygate.sandbox.ratelimit import Window

PUBLISHED_REVISIONS = tuple(
    date.fromisoformat(day)
    for day in (
        "2022-10-17",
        "2023-01-24",
        "2023-02-22",
        "2023-06-15",
        "2023-07-15",
        "2023-08-15",
        "2023-09-15",
        "2023-10-15",
        "2023-12-15",
        "2024-02-15",
        "2024-05-15",
        "2024-06-15",
        "2024-07-15",
        "2024-10-15",
        "2025-01-15",
        "2025-04-15",
        "2025-07-15",
        "2025-10-15",
        "2026-01-15",
        "2026-04-15",
        "2026-07-15",
        "2026-10-15",
    )
)
"""Klaviyo's GA revisions, oldest first, as its changelog lists them (2026-10-15 is the newest
as of 2026-12-01; add each new one here when Klaviyo publishes it)."""

OLDEST_REVISION = PUBLISHED_REVISIONS[0]
"""Klaviyo's first stable revision: earlier dates are answered 404."""


def newest_revision(today: date) -> date:
    """The newest revision published on or before `today`: later dates are answered 404."""
    return max(day for day in PUBLISHED_REVISIONS if day <= today)


_REVISION = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(\.pre)?$")

Handler = Callable[[Request, KlaviyoState], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

BURST_STEADY_L = (Window(75, 1, "burst"), Window(750, 60, "steady"))
"""The "L" tier (profiles, list reads): 75/s and 750/m."""

BURST_STEADY_M = (Window(10, 1, "burst"), Window(150, 60, "steady"))
"""The "M" tier (list writes): 10/s and 150/m."""

BURST_STEADY_XS = (Window(1, 1, "burst"), Window(15, 60, "steady"))
"""The "XS" tier (accounts): 1/s and 15/m."""


def _unauthenticated(detail: str) -> KlaviyoError:
    title = "Authentication credentials were not provided."
    return KlaviyoError(401, "not_authenticated", title, detail)


def _authenticate(request: Request, sandbox: KlaviyoState) -> tuple[str, frozenset[str] | None]:
    """Return (rate-limit principal, granted scopes or None for a private key)."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    failed = KlaviyoError(
        401,
        "authentication_failed",
        "Incorrect authentication credentials.",
        "Incorrect authentication credentials.",
    )
    if scheme == "Klaviyo-API-Key" and credential:
        if credential not in sandbox.private_keys:
            raise failed
        return f"account:{ACCOUNT_ID}", None
    if scheme.lower() == "bearer" and credential:
        grant = sandbox.grants.authenticate(credential)
        if grant is None:
            raise failed
        return f"install:{grant.grant_id}", frozenset(grant.scopes)
    raise _unauthenticated("Missing or invalid authorization scheme. Please use Klaviyo-API-Key.")


def _check_revision(request: Request, sandbox: KlaviyoState) -> None:
    raw = request.headers.get("revision")
    if raw is None:
        raise invalid("The revision header is required.", parameter="revision")
    match = _REVISION.match(raw.strip())
    try:
        if match is None:
            raise ValueError(raw)
        requested = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        detail = f"Invalid revision '{raw}'. Use the YYYY-MM-DD format."
        raise invalid(detail, parameter="revision") from exc
    if not OLDEST_REVISION <= requested <= newest_revision(sandbox.clock.utcnow().date()):
        detail = f"Revision {raw} is not valid for {request.method} {request.url.path}."
        raise KlaviyoError(404, "not_found", "Not found.", detail)


def _rate_limit(
    sandbox: KlaviyoState, principal: str, bucket: str, windows: tuple[Window, ...]
) -> dict[str, str]:
    if not sandbox.config.rate_limit:
        return {}
    decision = sandbox.limiter.hit(f"{principal}:{bucket}", windows)
    if not decision.allowed:
        sandbox.stats.throttled_calls += 1
        wait = decision.reset_after
        unit = "second" if wait == 1 else "seconds"
        raise KlaviyoError(
            429,
            "throttled",
            "Request was throttled.",
            f"Request was throttled. Expected available in {wait} {unit}.",
            headers={"Retry-After": str(wait)},
        )
    return {
        "RateLimit-Limit": str(decision.window.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_after),
    }


def klaviyo_endpoint(
    bucket: str, windows: tuple[Window, ...], scope: str
) -> Callable[[Handler], Endpoint]:
    """Wrap a handler with Klaviyo's checks; `KlaviyoError` raised inside becomes JSON:API."""

    def decorate(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            sandbox = request.app.state.sandbox
            if not isinstance(sandbox, KlaviyoState):
                raise TypeError("app.state.sandbox is not a KlaviyoState")
            sandbox.stats.api_calls += 1
            rate_headers: dict[str, str] = {}
            try:
                principal, scopes = _authenticate(request, sandbox)
                _check_revision(request, sandbox)
                if scopes is not None and scope not in scopes:
                    raise KlaviyoError(
                        403,
                        "permission_denied",
                        "You do not have permission to perform this action.",
                        f"This request needs the {scope} scope.",
                    )
                rate_headers = _rate_limit(sandbox, principal, bucket, windows)
                response = await handler(request, sandbox)
            except KlaviyoError as exc:
                response = error_response(exc)
            response.headers.update(rate_headers)
            return response

        return endpoint

    return decorate


async def read_document(request: Request) -> dict[str, Any]:
    """Read a JSON:API request document with a top-level `data` member, or raise 400/415."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/vnd.api+json", "application/json"):
        raise KlaviyoError(
            415,
            "unsupported_media_type",
            "Unsupported media type.",
            f"Unsupported media type '{content_type}' in request.",
        )
    try:
        document = json.loads(await request.body())
    except ValueError as exc:
        raise KlaviyoError(400, "parse_error", "Parse error.", "Malformed JSON body.") from exc
    if not isinstance(document, dict) or "data" not in document:
        raise invalid("The request body must be an object with a 'data' member.", pointer="/data")
    return document


def expect_type(data: object, resource_type: str, pointer: str = "/data") -> dict[str, Any]:
    """Return `data` if it is a resource object of `resource_type`, else raise 400/409."""
    if not isinstance(data, dict):
        raise invalid("Expected a resource object.", pointer=pointer)
    if data.get("type") != resource_type:
        detail = f"The type '{data.get('type')}' does not match the resource '{resource_type}'."
        raise KlaviyoError(409, "conflict", "Conflict.", detail, {"pointer": f"{pointer}/type"})
    return data
