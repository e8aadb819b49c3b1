"""The generic sandbox's HTTP face: every URL of one catalog entry, on one loopback origin.

Keygate reaches it through the app's `sandbox_origin` override: each URL, once rendered for a
connection, arrives with its host as the first path segment
(`https://acme.zendesk.com/api/v2/me` → `/acme.zendesk.com/api/v2/me`), so the sandbox sees the
host and path the connection's parameters and captured values made, and answers only there.

`/_sandbox/stats` shows the counters and the refusals (with their reasons);
`POST /_sandbox/expire_access_tokens` ends every access token that expires.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from keygate.catalog.model import AppSpec, OAuth2Method
from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.generic.provider import ProviderState, meant
from keygate.sandbox.oauth.protocol import OAuthError, add_query

_NO_STORE = {"Cache-Control": "no-store"}
_FORM = "application/x-www-form-urlencoded"


def _error(exc: OAuthError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=_NO_STORE)


def _split(url: str) -> tuple[str, list[tuple[str, str]]]:
    """(host/path, query pairs) of a scheme-less URL."""
    parts = urlsplit("//" + url)
    return parts.netloc + parts.path, parse_qsl(parts.query, keep_blank_values=True)


async def _body(
    request: Request, oauth: OAuth2Method, state: ProviderState, where: str
) -> dict[str, str]:
    """The token or revocation request's body, in the format the entry says, as strings."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if oauth.token_body == "json":  # noqa: S105 - a body format
        if content_type != "application/json":
            raise state.refuse(where, "the body must be application/json")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise state.refuse(where, "the body is not JSON") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise state.refuse(where, "the body must be a JSON object of strings")
        return data
    if content_type != _FORM:
        raise state.refuse(where, f"the body must be {_FORM}")
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def _matches(
    state: ProviderState, template: str | None, target: str, query: list[tuple[str, str]]
) -> bool:
    """Whether a request is for that URL template as rendered with the sandbox's values (the
    template's own query parameters included)."""
    if template is None:
        return False
    path, wanted = _split(state.url(template))
    return target == path and all(pair in query for pair in wanted)


async def _serve(request: Request) -> Response:
    state: ProviderState = request.app.state.provider
    target = request.url.path.lstrip("/")
    query = parse_qsl(request.url.query, keep_blank_values=True)
    headers = {k.lower(): v for k, v in request.headers.items()}
    oauth = state.oauth()
    try:
        if oauth is not None and _matches(state, oauth.authorize_url, target, query):
            answer = state.authorize(oauth, dict(query))
            return RedirectResponse(add_query(state.redirect_uri, answer), status_code=302)
        if oauth is not None and request.method == "POST":
            if _matches(state, oauth.token_url, target, query):
                body = await _body(request, oauth, state, "token")
                tokens = state.token(oauth, headers.get("authorization"), body)
                return JSONResponse(tokens, headers=_NO_STORE)
            if _matches(state, oauth.revoke_url, target, query):
                body = await _body(request, oauth, state, "revoke")
                state.revoke(oauth, headers.get("authorization"), body)
                return Response(status_code=200, headers=_NO_STORE)
        follow_up = oauth.capture_request if oauth is not None else None
        if (
            oauth is not None
            and follow_up is not None
            and request.method == follow_up.method
            and _matches(state, follow_up.url, target, query)
        ):
            return JSONResponse(state.capture_answer(oauth, headers))
        method = state.api(meant(target), headers, query)
    except OAuthError as exc:
        return _error(exc)
    return JSONResponse({"ok": True, "app": state.spec.name, "method": method, "path": target})


async def _stats(request: Request) -> Response:
    state: ProviderState = request.app.state.provider
    refusals = [{"where": r.where, "reason": r.reason} for r in state.refusals]
    return JSONResponse({"counts": dict(state.counts), "refusals": refusals})


async def _expire(request: Request) -> Response:
    state: ProviderState = request.app.state.provider
    state.expire_access_tokens()
    return JSONResponse({"expired": True})


def create_generic_app(
    spec: AppSpec, redirect_uri: str, clock: SandboxClock | None = None, **settings: Any
) -> Starlette:
    """The sandbox of one catalog entry; its state is `app.state.provider` (`ProviderState`).

    `redirect_uri` is the one callback it accepts (Keygate's); `settings` set `ProviderState`
    fields (`access_ttl`, `client_id`, `client_secret`).
    """
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    app = Starlette(
        routes=[
            Route("/_sandbox/stats", _stats, methods=["GET"]),
            Route("/_sandbox/expire_access_tokens", _expire, methods=["POST"]),
            Route("/{target:path}", _serve, methods=methods),
        ]
    )
    app.state.provider = ProviderState(spec, redirect_uri, clock or SandboxClock(), **settings)
    return app
