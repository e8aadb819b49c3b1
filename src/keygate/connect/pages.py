"""The hosted connect page: a person opens a connection's `url` and authorizes it."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import ApiKeyMethod, Method
from keygate.connect.tokens import InvalidSessionToken, SessionToken, parse
from keygate.connect.verify import VerificationFailed, verify_secret
from keygate.control.auth import RuntimeDep
from keygate.control.security_headers import content_security_policy
from keygate.runtime import Runtime
from keygate.secret import Secret
from keygate.store.records import ConnectionRecord
from keygate.store.sessions import SessionRepository

log = logging.getLogger("keygate.connect")
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

_STYLESHEET = Path(__file__).parent / "static" / "keygate.css"


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


async def load_context(runtime: Runtime, raw_token: str | None) -> ConnectContext:
    """Check a session token end to end, or raise the PageError a person should see."""
    try:
        token = parse(runtime.cipher, raw_token or "")
    except InvalidSessionToken:
        raise PageError(
            400,
            "This link is not valid",
            "The connect link is incomplete or was altered. Ask for a new link: "
            "GET /connections/{id} returns a fresh url.",
        ) from None
    if token.expired(runtime.settings.session_ttl_seconds):
        raise PageError(
            410,
            "This link has expired",
            "Connect links are valid for a limited time. Ask for a new link: "
            "GET /connections/{id} returns a fresh url.",
        )
    if await SessionRepository(runtime.db).is_spent(token.nonce):
        raise PageError(
            410,
            "This link was already used",
            "Each connect link works once. Ask for a new link: GET /connections/{id} "
            "returns a fresh url.",
        )
    connection = await runtime.connections.get(token.connection_id)
    app = runtime.apps.get(connection.app) if connection else None
    if connection is None or app is None:
        raise PageError(404, "This connection no longer exists", "It was deleted.")
    return ConnectContext(token, raw_token or "", connection, app)


def session_expiry(runtime: Runtime, token: SessionToken) -> datetime:
    """When the session this token opened stops being usable."""
    return datetime.fromtimestamp(token.issued_at + runtime.settings.session_ttl_seconds, UTC)


def render_connect(
    request: Request, ctx: ConnectContext, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The page that names the app and asks the person to continue."""
    method = ctx.app.spec.method(Method(ctx.connection.method))
    oauth = ctx.app.oauth()
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
        forms.append(_origin(str(oauth.authorize_url)))
    return templates.TemplateResponse(
        request, "connect.html", context, status_code=status, headers=page_headers(forms=forms)
    )


@router.get("/connect/assets/keygate.css")
async def stylesheet() -> FileResponse:
    """The connect pages' stylesheet."""
    return FileResponse(
        _STYLESHEET, media_type="text/css; charset=utf-8", headers={"Cache-Control": "max-age=3600"}
    )


@router.get("/connect")
async def connect_page(request: Request, runtime: RuntimeDep) -> Response:
    """The page behind a connection's `url`."""
    try:
        ctx = await load_context(runtime, request.query_params.get("session_token"))
    except PageError as err:
        return message_page(request, err.status, err.heading, err.message)
    return render_connect(request, ctx)


@router.post("/connect")
async def connect_submit(request: Request, runtime: RuntimeDep) -> Response:
    """The person continues: pasted secrets are verified here; OAuth goes to the provider."""
    form = await request.form()
    token = form.get("session_token")
    try:
        ctx = await load_context(runtime, token if isinstance(token, str) else None)
    except PageError as err:
        return message_page(request, err.status, err.heading, err.message)
    method = ctx.app.spec.method(Method(ctx.connection.method))
    if isinstance(method, ApiKeyMethod):
        values: dict[str, Secret] = {}
        for field in method.fields:
            value = form.get(field.name)
            text = value.strip() if isinstance(value, str) else ""
            if not text:
                return render_connect(request, ctx, f"{field.label} is required.", 400)
            if field.pattern and not re.fullmatch(field.pattern, text):
                return render_connect(
                    request, ctx, f"That does not look like a {field.label}.", 400
                )
            values[field.name] = Secret(text)
        return await _finish_secret(request, runtime, ctx, method, values)
    from keygate.connect.oauth_flow import start_authorization

    return await start_authorization(request, runtime, ctx)


async def _finish_secret(
    request: Request,
    runtime: Runtime,
    ctx: ConnectContext,
    method: ApiKeyMethod,
    values: dict[str, Secret],
) -> Response:
    try:
        await verify_secret(runtime.upstream, ctx.app, method, values)
    except VerificationFailed as failed:
        return render_connect(request, ctx, str(failed), 400)
    spent = await SessionRepository(runtime.db).spend(
        ctx.token.nonce, ctx.connection.id, session_expiry(runtime, ctx.token)
    )
    if not spent:
        return message_page(
            request, 410, "This link was already used", "Each connect link works once."
        )
    plain = {name: secret.reveal() for name, secret in values.items()}
    await runtime.connections.activate(ctx.connection.id, plain, expires_at=None)
    log.info("connection %s is ACTIVE (%s, key verified)", ctx.connection.id, ctx.app.name)
    return success_page(request, ctx.app)


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
