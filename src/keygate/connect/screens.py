"""What both legs of the connect flow show: the session a connect link opens, and its pages."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import ApiKeyMethod, ConnectionParam, Method
from keygate.connect.tokens import InvalidSessionToken, SessionToken, parse
from keygate.control.security_headers import content_security_policy
from keygate.crypto import Cipher
from keygate.store.connections import ConnectionRepository
from keygate.store.records import ConnectionRecord
from keygate.store.sessions import SessionRepository

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def page_headers(*, forms: list[str] | None = None) -> dict[str, str]:
    """Headers of a connect page: never cached, never framed, loading its stylesheet only.

    `forms` are the origins its form may submit to. Browsers check `form-action` against
    the redirects after a submission too, so an OAuth page names the provider's origin.
    """
    policy = content_security_policy(styles=["'self'"], images=[], forms=forms or [])
    return {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": policy,
    }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PageError(Exception):
    """Something a person must be told on a page instead of a stack trace."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status, self.heading, self.message = status, heading, message


@dataclass(frozen=True, slots=True)
class ConnectContext:
    """A verified, unexpired, unspent session with its connection and app."""

    token: SessionToken
    raw_token: str
    connection: ConnectionRecord
    app: ConfiguredApp


def message_page(
    request: Request,
    status: int,
    heading: str,
    message: str,
    tone: str = "error",
    detail: str | None = None,
) -> HTMLResponse:
    """A page that says one thing."""
    context = {"heading": heading, "message": message, "tone": tone, "detail": detail}
    return templates.TemplateResponse(
        request, "message.html", context, status_code=status, headers=page_headers()
    )


async def load_context(
    raw_token: str | None,
    *,
    cipher: Cipher,
    sessions: SessionRepository,
    connections: ConnectionRepository,
    apps: Mapping[str, ConfiguredApp],
    ttl_seconds: int,
) -> ConnectContext:
    """Check a session token end to end, or raise the PageError a person should see.

    `cipher` verifies the token, `ttl_seconds` is how long it lives, `sessions` says whether it
    was spent; `connections` and `apps` give the connection it opens and that one's app.
    """
    try:
        token = parse(cipher, raw_token or "")
    except InvalidSessionToken:
        raise PageError(
            400,
            "This link is not valid",
            "The connect link is incomplete or was altered. Ask for a new link: "
            "GET /connections/{id} returns a fresh url.",
        ) from None
    if token.expired(ttl_seconds):
        raise PageError(
            410,
            "This link has expired",
            "Connect links are valid for a limited time. Ask for a new link: "
            "GET /connections/{id} returns a fresh url.",
        )
    if await sessions.is_spent(token.nonce):
        raise PageError(
            410,
            "This link was already used",
            "Each connect link works once. Ask for a new link: GET /connections/{id} "
            "returns a fresh url.",
        )
    connection = await connections.get(token.connection_id)
    app = apps.get(connection.app) if connection else None
    if connection is None or app is None:
        raise PageError(404, "This connection no longer exists", "It was deleted.")
    return ConnectContext(token, raw_token or "", connection, app)


def session_expiry(token: SessionToken, ttl_seconds: int) -> datetime:
    """When the session this token opened stops being usable."""
    return datetime.fromtimestamp(token.issued_at + ttl_seconds, UTC)


def missing_params(ctx: ConnectContext) -> list[ConnectionParam]:
    """The connection parameters its method needs that it was not given yet."""
    method = ctx.app.spec.method(Method(ctx.connection.method))
    if method is None:
        return []
    given = ctx.connection.params
    return [p for p in ctx.app.spec.params_for(method) if p.name not in given]


def render_connect(
    request: Request, ctx: ConnectContext, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The page that names the app and asks the person to continue (first, for the
    connection parameters it lacks)."""
    method = ctx.app.spec.method(Method(ctx.connection.method))
    oauth = ctx.app.oauth()
    asked = missing_params(ctx)
    if asked:
        params_context: dict[str, Any] = {
            "app": ctx.app.spec,
            "session_token": ctx.raw_token,
            "action": "/connect",
            "error": error,
            "params": asked,
        }
        return templates.TemplateResponse(
            request,
            "params.html",
            params_context,
            status_code=status,
            headers=page_headers(forms=["'self'"]),  # the form posts back to /connect
        )
    context: dict[str, Any] = {
        "app": ctx.app.spec,
        "method": ctx.connection.method,
        "session_token": ctx.raw_token,
        "action": "/connect",
        "error": error,
        "fields": method.fields if isinstance(method, ApiKeyMethod) else [],
        "help": method.help if isinstance(method, ApiKeyMethod) else None,
        "scopes": (ctx.connection.scopes or (oauth.scopes if oauth else [])),
    }
    forms = ["'self'"]
    if oauth is not None and ctx.connection.method == Method.OAUTH2.value:
        forms.append(_origin(ctx.app.url(oauth.authorize_url, ctx.connection.params)))
    return templates.TemplateResponse(
        request, "connect.html", context, status_code=status, headers=page_headers(forms=forms)
    )


def success_page(request: Request, app: ConfiguredApp) -> HTMLResponse:
    """The page after a connection became ACTIVE."""
    return message_page(
        request,
        200,
        f"{app.spec.display_name} is connected",
        "The connection is active. You may close this tab.",
        tone="ok",
        detail=f"Finished at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.",
    )
