"""The OAuth leg of the connect flow: send the person to the provider, then take the callback."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pyreqwest.client import Client

from keygate.catalog.loader import ConfiguredApp
from keygate.catalog.model import OAuth2Method
from keygate.catalog.templates import fill
from keygate.catalog.values import CaptureFailed, capture_from
from keygate.connect.browser_binding import bind_browser, is_bound
from keygate.connect.screens import (
    ConnectContext,
    message_page,
    missing_params,
    render_connect,
    success_page,
)
from keygate.control.deps import (
    AppsDep,
    CipherDep,
    ConnectionsDep,
    PublicUrlDep,
    SessionsDep,
    UpstreamDep,
)
from keygate.crypto import Cipher
from keygate.oauth.protocol import (
    TokenResponseError,
    TokenSet,
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
from keygate.store.connections import ConnectionRepository
from keygate.store.records import Status
from keygate.store.schema import ConnectSession, utcnow
from keygate.store.sessions import SessionRepository

log = logging.getLogger("keygate.connect")
router = APIRouter(include_in_schema=False)

AUTHORIZATION_WINDOW = timedelta(minutes=15)
"""How long a person has at the provider after pressing Continue (sign-in, consent)."""


def redirect_uri(public_url: str) -> str:
    """The one callback URL registered with every provider."""
    return f"{public_url}/oauth/callback"


def _missing_client(request: Request, app_name: str) -> Response:
    return message_page(
        request,
        503,
        "This app is not set up yet",
        f"The Keygate operator has not configured an OAuth client for {app_name}. "
        f"They can run: keygate apps configure {app_name} --client-id … --client-secret …",
    )


async def start_authorization(
    request: Request,
    ctx: ConnectContext,
    *,
    cipher: Cipher,
    sessions: SessionRepository,
    public_url: str,
) -> Response:
    """Spend the session, remember state and PKCE verifier, redirect to the provider."""
    oauth = ctx.app.oauth()
    if oauth is None:
        return message_page(request, 400, "Not an OAuth app", "This app has no OAuth method.")
    if not ctx.app.client_id:
        return _missing_client(request, ctx.app.name)
    if missing_params(ctx):
        return render_connect(request, ctx, "Fill in every field first.", 400)
    params = ctx.connection.params
    state = new_state()
    verifier = new_code_verifier() if oauth.pkce != "none" else None
    sealed = (
        cipher.encrypt(verifier.encode(), bound_to=f"pkce:{ctx.connection.id}")
        if verifier
        else None
    )
    # The pending authorization gets its own window from now: a link opened a minute before
    # it expires must still let the person sign in at the provider and come back.
    spent = await sessions.spend(
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
        ctx.app.url(oauth.authorize_url, params),
        client_id=ctx.app.client_id,
        redirect_uri=redirect_uri(public_url),
        scopes=ctx.connection.scopes or oauth.scopes,
        scope_separator=oauth.scope_separator,
        state=state,
        code_challenge=s256_challenge(verifier) if verifier else None,
        extra={name: fill(value, params) for name, value in oauth.authorize_params.items()},
    )
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    bind_browser(
        response,
        cipher,
        state,
        secure=public_url.startswith("https://"),
        max_age=int(AUTHORIZATION_WINDOW.total_seconds()),
    )
    return response


def _refused(request: Request, heading: str, message: str) -> Response:
    return message_page(request, 400, heading, message)


@router.get("/oauth/callback")
async def oauth_callback(
    request: Request,
    cipher: CipherDep,
    sessions: SessionsDep,
    connections: ConnectionsDep,
    apps: AppsDep,
    upstream: UpstreamDep,
    public_url: PublicUrlDep,
) -> Response:
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
    if not is_bound(request, cipher, state):
        return _refused(
            request,
            "This authorization did not start in this browser",
            "Keygate only accepts the answer of a provider in the browser that opened the "
            "connect link. Start again from a fresh connect link (GET /connections/{id} "
            "returns one).",
        )
    pending = await sessions.claim(state_digest(state))
    if pending is None:
        return _refused(
            request,
            "This authorization is not valid",
            "It was already completed, has expired, or did not start here. Start again from a "
            "fresh connect link (GET /connections/{id} returns one).",
        )
    # The binding cookie is left to expire: a reload of this page then says "already
    # completed" rather than "not this browser".
    return await _complete(
        request,
        pending,
        cipher=cipher,
        connections=connections,
        apps=apps,
        client=upstream,
        public_url=public_url,
    )


async def _fail(
    connections: ConnectionRepository, connection_id: str, error: str, message: str
) -> None:
    await connections.set_status(
        connection_id, Status.FAILED, f"oauth_{error}"[:64], message[:1000]
    )


async def _complete(
    request: Request,
    pending: ConnectSession,
    *,
    cipher: Cipher,
    connections: ConnectionRepository,
    apps: Mapping[str, ConfiguredApp],
    client: Client,
    public_url: str,
) -> Response:
    """Finish a claimed authorization: record a refusal, or exchange the code and activate."""
    params = request.query_params
    connection = await connections.get(pending.connection_id)
    app = apps.get(connection.app) if connection else None
    oauth = app.oauth() if app else None
    if connection is None or app is None or oauth is None:
        return message_page(request, 404, "This connection no longer exists", "It was deleted.")
    name = app.spec.display_name
    error = params.get("error")
    if error:
        reason = (params.get("error_description") or error)[:500]
        await _fail(
            connections, connection.id, error, f"{name} refused the authorization: {reason}"
        )
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
        cipher.decrypt(pending.verifier_ciphertext, bound_to=f"pkce:{connection.id}").decode()
        if pending.verifier_ciphertext
        else None
    )
    try:
        values = {**connection.params, **capture_from(oauth, "callback", params)}
        tokens = await request_tokens(
            client,
            app,
            oauth,
            authorization_code_form(code, redirect_uri(public_url), verifier),
            values=values,
            first=True,
        )
        captured = {**values, **tokens.captured}
        if oauth.capture_request is not None:
            captured.update(await _capture_request(client, app, oauth, tokens, captured))
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
            connections, connection.id, exc.error, f"{name} refused the code exchange: {reason}"
        )
        return message_page(
            request, 400, f"{name} did not authorize Keygate", f"{name} said: {reason}"
        )
    except CaptureFailed as exc:
        # The provider's answer lacks what the catalog says the connection needs to work.
        await _fail(connections, connection.id, "capture_failed", f"{name}: {exc}")
        return message_page(request, 502, f"{name} did not say enough", f"{exc}.")
    stored = tokens.stored_values(previous=captured, kept=oauth.captured_names())
    await connections.activate(connection.id, stored, tokens.expires_at)
    log.info("connection %s (%s) authorized", connection.id, app.name)
    return success_page(request, app)


async def _capture_request(
    client: Client,
    app: ConfiguredApp,
    oauth: OAuth2Method,
    tokens: TokenSet,
    values: Mapping[str, str],
) -> dict[str, str]:
    """The method's one follow-up request (after the code exchange), and what it captures."""
    spec = oauth.capture_request
    assert spec is not None
    known = {**values, "access_token": tokens.access_token, "token_type": tokens.token_type}
    headers = [(name, fill(value, known)) for name, value in spec.headers.items()]
    try:
        response = await (
            client.request(spec.method, app.url(spec.url, values))
            .headers(headers)
            .timeout(timedelta(seconds=15))
            .build()
            .send()
        )
        raw = bytes(await response.bytes())
    except Exception as exc:
        raise TokenEndpointUnavailable(type(exc).__name__) from None
    if response.status >= 300:
        raise CaptureFailed(f"the capture request answered {response.status}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CaptureFailed("the capture request did not answer JSON") from None
    return capture_from(oauth, "request", body)
