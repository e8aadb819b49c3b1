"""The hosted connect page: a person opens a connection's `url` and authorizes it."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pyreqwest.client import Client

from keygate.catalog.auth import CredentialDoesNotFit, render_auth
from keygate.catalog.model import ApiKeyMethod, Method
from keygate.connect.oauth_flow import start_authorization
from keygate.connect.screens import (
    ConnectContext,
    PageError,
    load_context,
    message_page,
    missing_params,
    render_connect,
    session_expiry,
    success_page,
)
from keygate.connect.verify import VerificationFailed, verify_secret
from keygate.control.deps import (
    AppsDep,
    CipherDep,
    ConnectionsDep,
    PublicUrlDep,
    SessionsDep,
    SessionTtlDep,
    UpstreamDep,
)
from keygate.secret import Secret
from keygate.store.connections import ConnectionRepository
from keygate.store.sessions import SessionRepository

log = logging.getLogger("keygate.connect")
router = APIRouter(include_in_schema=False)
_STYLESHEET = Path(__file__).parent / "static" / "keygate.css"


@router.get("/connect/assets/keygate.css")
async def stylesheet() -> FileResponse:
    """The connect pages' stylesheet."""
    return FileResponse(
        _STYLESHEET, media_type="text/css; charset=utf-8", headers={"Cache-Control": "max-age=3600"}
    )


@router.get("/connect")
async def connect_page(
    request: Request,
    cipher: CipherDep,
    sessions: SessionsDep,
    connections: ConnectionsDep,
    apps: AppsDep,
    ttl_seconds: SessionTtlDep,
) -> Response:
    """The page behind a connection's `url`."""
    try:
        ctx = await load_context(
            request.query_params.get("session_token"),
            cipher=cipher,
            sessions=sessions,
            connections=connections,
            apps=apps,
            ttl_seconds=ttl_seconds,
        )
    except PageError as err:
        return message_page(request, err.status, err.heading, err.message)
    return render_connect(request, ctx)


@router.post("/connect")
async def connect_submit(
    request: Request,
    cipher: CipherDep,
    sessions: SessionsDep,
    connections: ConnectionsDep,
    apps: AppsDep,
    ttl_seconds: SessionTtlDep,
    upstream: UpstreamDep,
    public_url: PublicUrlDep,
) -> Response:
    """The person continues: pasted secrets are verified here; OAuth goes to the provider."""
    form = await request.form()
    token = form.get("session_token")
    try:
        ctx = await load_context(
            token if isinstance(token, str) else None,
            cipher=cipher,
            sessions=sessions,
            connections=connections,
            apps=apps,
            ttl_seconds=ttl_seconds,
        )
    except PageError as err:
        return message_page(request, err.status, err.heading, err.message)
    if form.get("step") == "params":
        return await _take_params(request, ctx, dict(form), connections)
    if missing_params(ctx):
        return render_connect(request, ctx, "Fill in every field first.", 400)
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
        return await _finish_secret(
            request,
            ctx,
            method,
            values,
            client=upstream,
            sessions=sessions,
            connections=connections,
            ttl_seconds=ttl_seconds,
        )
    return await start_authorization(
        request, ctx, cipher=cipher, sessions=sessions, public_url=public_url
    )


async def _take_params(
    request: Request,
    ctx: ConnectContext,
    form: dict[str, object],
    connections: ConnectionRepository,
) -> Response:
    """The person gave the connection parameters: check them, store them, show the next step."""
    given: dict[str, str] = {}
    for param in missing_params(ctx):
        raw = form.get(f"param.{param.name}")
        value = raw.strip() if isinstance(raw, str) else ""
        problem = param.problem(value)
        if problem is not None:
            return render_connect(
                request,
                ctx,
                f"{param.label}: that does not look right (e.g. {param.example}).",
                400,
            )
        given[param.name] = value
    updated = await connections.set_params(ctx.connection.id, given)
    if updated is None:
        return message_page(request, 404, "This connection no longer exists", "It was deleted.")
    log.info("connection %s: parameters given on the connect page", ctx.connection.id)
    return render_connect(request, replace(ctx, connection=updated))


async def _finish_secret(
    request: Request,
    ctx: ConnectContext,
    method: ApiKeyMethod,
    values: dict[str, Secret],
    *,
    client: Client,
    sessions: SessionRepository,
    connections: ConnectionRepository,
    ttl_seconds: int,
) -> Response:
    plain = {name: secret.reveal() for name, secret in values.items()}
    try:
        # Rendered as the gateway will render it: a value it cannot inject is refused here.
        auth = render_auth(method, {**ctx.connection.params, **plain})
    except CredentialDoesNotFit as exc:
        label = next((f.label for f in method.fields if f.name == exc.field), exc.field)
        return render_connect(request, ctx, f"That does not look like a {label}.", 400)
    try:
        await verify_secret(client, ctx.app, method, auth, ctx.connection.params)
    except VerificationFailed as failed:
        return render_connect(request, ctx, str(failed), 400)
    spent = await sessions.spend(
        ctx.token.nonce, ctx.connection.id, session_expiry(ctx.token, ttl_seconds)
    )
    if not spent:
        return message_page(
            request, 410, "This link was already used", "Each connect link works once."
        )
    await connections.activate(ctx.connection.id, plain, expires_at=None)
    log.info("connection %s is ACTIVE (%s, key verified)", ctx.connection.id, ctx.app.name)
    return success_page(request, ctx.app)
