"""The OAuth leg of the connect flow: send the person to the provider, then take the callback."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import update

from keygate.connect.browser_binding import bind_browser, is_bound
from keygate.connect.screens import ConnectContext, message_page, success_page
from keygate.control.auth import RuntimeDep
from keygate.oauth.protocol import (
    TokenResponseError,
    authorization_code_form,
    build_authorize_url,
    new_code_verifier,
    new_state,
    s256_challenge,
    state_digest,
)
from keygate.oauth.token_endpoint import (
    OAuthClientMissing,
    TokenEndpointUnavailable,
    request_tokens,
)
from keygate.runtime import Runtime
from keygate.store.records import Status
from keygate.store.schema import ConnectSession, utcnow
from keygate.store.sessions import SessionRepository

log = logging.getLogger("keygate.connect")
router = APIRouter(include_in_schema=False)

AUTHORIZATION_WINDOW = timedelta(minutes=15)
"""How long a person has at the provider after pressing Continue (sign-in, consent)."""


def redirect_uri(runtime: Runtime) -> str:
    """The one callback URL registered with every provider."""
    return f"{runtime.settings.public_url}/oauth/callback"


def _missing_client(request: Request, app_name: str) -> Response:
    return message_page(
        request,
        503,
        "This app is not set up yet",
        f"The Keygate operator has not configured an OAuth client for {app_name}. "
        f"They can run: keygate apps configure {app_name} --client-id … --client-secret …",
    )


async def start_authorization(request: Request, runtime: Runtime, ctx: ConnectContext) -> Response:
    """Spend the session, remember state and PKCE verifier, redirect to the provider."""
    oauth = ctx.app.oauth()
    if oauth is None:
        return message_page(request, 400, "Not an OAuth app", "This app has no OAuth method.")
    if not ctx.app.client_id:
        return _missing_client(request, ctx.app.name)
    state = new_state()
    verifier = new_code_verifier() if oauth.pkce != "none" else None
    sealed = (
        runtime.cipher.encrypt(verifier.encode(), bound_to=f"pkce:{ctx.connection.id}")
        if verifier
        else None
    )
    # The pending authorization gets its own window from now: a link opened a minute before
    # it expires must still let the person sign in at the provider and come back.
    spent = await SessionRepository(runtime.db).spend(
        ctx.token.nonce,
        ctx.connection.id,
        utcnow() + AUTHORIZATION_WINDOW,
        state_hash=state_digest(state),
        verifier_ciphertext=sealed,
    )
    if not spent:
        return message_page(
            request, 410, "This link was already used", "Each connect link works once."
        )
    url = build_authorize_url(
        str(oauth.authorize_url),
        client_id=ctx.app.client_id,
        redirect_uri=redirect_uri(runtime),
        scopes=ctx.connection.scopes or oauth.scopes,
        scope_separator=oauth.scope_separator,
        state=state,
        code_challenge=s256_challenge(verifier) if verifier else None,
        extra=oauth.authorize_params,
    )
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    bind_browser(
        response,
        runtime.cipher,
        state,
        secure=_secure(runtime),
        max_age=int(AUTHORIZATION_WINDOW.total_seconds()),
    )
    return response


def _secure(runtime: Runtime) -> bool:
    return runtime.settings.public_url.startswith("https://")


async def _claim(runtime: Runtime, state: str) -> ConnectSession | None:
    """Mark the pending authorization completed; None if unknown, replayed or expired."""
    digest = state_digest(state)
    now = utcnow()
    async with runtime.db.sessions() as session, session.begin():
        result = await session.execute(
            update(ConnectSession)
            .where(
                ConnectSession.state_hash == digest,
                ConnectSession.completed_at.is_(None),
                ConnectSession.expires_at > now,
            )
            .values(completed_at=now)
        )
        claimed = getattr(result, "rowcount", 0) == 1
    return await SessionRepository(runtime.db).by_state(digest) if claimed else None


def _refused(request: Request, heading: str, message: str) -> Response:
    return message_page(request, 400, heading, message)


@router.get("/oauth/callback")
async def oauth_callback(request: Request, runtime: RuntimeDep) -> Response:
    """The provider sends the person back here with a code (or an error) and our state."""
    state = request.query_params.get("state")
    if not state or len(state) > 256:
        return _refused(
            request,
            "Missing authorization state",
            "This page is only reached from a provider's consent screen. Start again from the "
            "connect link.",
        )
    # Checked before claiming: a foreign state must not spend or change anyone's session.
    if not is_bound(request, runtime.cipher, state):
        return _refused(
            request,
            "This authorization did not start in this browser",
            "Keygate only accepts the answer of a provider in the browser that opened the "
            "connect link. Start again from a fresh connect link (GET /connections/{id} "
            "returns one).",
        )
    pending = await _claim(runtime, state)
    if pending is None:
        return _refused(
            request,
            "This authorization is not valid",
            "It was already completed, has expired, or did not start here. Start again from a "
            "fresh connect link (GET /connections/{id} returns one).",
        )
    # The binding cookie is left to expire: a reload of this page then says "already
    # completed" rather than "not this browser".
    return await _complete(request, runtime, pending)


async def _fail(runtime: Runtime, connection_id: str, error: str, message: str) -> None:
    await runtime.connections.set_status(
        connection_id, Status.FAILED, f"oauth_{error}"[:64], message[:1000]
    )


async def _complete(request: Request, runtime: Runtime, pending: ConnectSession) -> Response:
    """Finish a claimed authorization: record a refusal, or exchange the code and activate."""
    params = request.query_params
    connection = await runtime.connections.get(pending.connection_id)
    app = runtime.apps.get(connection.app) if connection else None
    oauth = app.oauth() if app else None
    if connection is None or app is None or oauth is None:
        return message_page(request, 404, "This connection no longer exists", "It was deleted.")
    name = app.spec.display_name
    error = params.get("error")
    if error:
        reason = (params.get("error_description") or error)[:500]
        await _fail(runtime, connection.id, error, f"{name} refused the authorization: {reason}")
        return message_page(
            request, 400, f"{name} did not authorize Keygate", f"{name} said: {reason}"
        )
    code = params.get("code")
    if not code:
        return _refused(
            request,
            "No authorization code",
            f"{name} sent no code back. Start again from a fresh connect link.",
        )
    verifier = (
        runtime.cipher.decrypt(
            pending.verifier_ciphertext, bound_to=f"pkce:{connection.id}"
        ).decode()
        if pending.verifier_ciphertext
        else None
    )
    try:
        tokens = await request_tokens(
            runtime.upstream,
            app,
            oauth,
            authorization_code_form(code, redirect_uri(runtime), verifier),
        )
    except OAuthClientMissing:
        return _missing_client(request, app.name)
    except TokenEndpointUnavailable as exc:
        log.warning("code exchange for %s failed transiently: %s", connection.id, exc)
        return message_page(
            request,
            502,
            f"{name} is not answering",
            "Keygate could not finish the authorization. Start again from a fresh connect link.",
        )
    except TokenResponseError as exc:
        reason = (exc.description or exc.error)[:500]
        await _fail(
            runtime, connection.id, exc.error, f"{name} refused the code exchange: {reason}"
        )
        return message_page(
            request, 400, f"{name} did not authorize Keygate", f"{name} said: {reason}"
        )
    await runtime.connections.activate(connection.id, tokens.stored_values(), tokens.expires_at)
    log.info("connection %s (%s) authorized", connection.id, app.name)
    return success_page(request, app)
