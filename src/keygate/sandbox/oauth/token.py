"""The token endpoint (RFC 6749 §3.2) and Klaviyo's revocation endpoint (RFC 7009)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.faults import DROP_MARKER, TokenEndpointMode
from keygate.sandbox.oauth.grants import TokenSet
from keygate.sandbox.oauth.protocol import OAuthError, check_client, verify_pkce
from keygate.sandbox.request_context import read_oauth_form, sandbox_state
from keygate.sandbox.state import SandboxState

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(error: OAuthError) -> JSONResponse:
    """Render an `OAuthError` as the RFC 6749 §5.2 JSON answer."""
    headers = dict(_NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def injected_fault(sandbox: SandboxState) -> Response | None:
    """Apply the token-endpoint fault switch; return the faulty answer, or None to proceed."""
    mode = sandbox.faults.token_endpoint
    if mode == TokenEndpointMode.SLOW:
        await asyncio.sleep(sandbox.faults.token_delay)
    elif mode == TokenEndpointMode.ERROR500:
        return JSONResponse({"error": "server_error"}, status_code=500)
    elif mode == TokenEndpointMode.DOWN:
        headers = {DROP_MARKER.decode(): "1"}
        return JSONResponse({"error": "temporarily_unavailable"}, 503, headers=headers)
    return None


def _exchange_code(sandbox: SandboxState, form: dict[str, str]) -> TokenSet:
    code = form.get("code")
    if not code:
        raise OAuthError("invalid_request", "The code parameter is required.")
    record = sandbox.grants.take_code(code, sandbox.config.client_id, form.get("redirect_uri"))
    if record.code_challenge is not None:
        verify_pkce(record.code_challenge, form.get("code_verifier"))
    grant = sandbox.grants.create_grant(record.client_id, record.scopes)
    with_refresh = sandbox.gets_refresh_token(record.scopes)
    return sandbox.grants.mint(grant, sandbox.access_ttl, with_refresh)


def _refresh(sandbox: SandboxState, form: dict[str, str]) -> TokenSet:
    refresh_token = form.get("refresh_token")
    if not refresh_token:
        raise OAuthError("invalid_request", "The refresh_token parameter is required.")
    return sandbox.grants.refresh(
        refresh_token,
        sandbox.config.client_id,
        sandbox.access_ttl,
        sandbox.rotating,
        sandbox.refresh_idle_ttl,
    )


def _redeem_device_code(sandbox: SandboxState, form: dict[str, str]) -> TokenSet:
    device_code = form.get("device_code")
    if not device_code:
        raise OAuthError("invalid_request", "The device_code parameter is required.")
    record = sandbox.devices.poll(device_code, sandbox.config.client_id)
    grant = sandbox.grants.create_grant(record.client_id, record.scopes)
    with_refresh = sandbox.gets_refresh_token(record.scopes)
    return sandbox.grants.mint(grant, sandbox.access_ttl, with_refresh)


async def token(request: Request) -> Response:
    """POST: exchange a code, a refresh token or (Constant Contact) a device code."""
    sandbox = sandbox_state(request)
    try:
        form = await read_oauth_form(request)
        grant_type = form.get("grant_type", "")
        sandbox.stats.token_requests[grant_type or "missing"] += 1
        fault = await injected_fault(sandbox)
        if fault is not None:
            return fault
        check_client(
            request.headers.get("authorization"),
            sandbox.config.client_id,
            sandbox.config.client_secret,
        )
        if grant_type == "authorization_code":
            tokens = _exchange_code(sandbox, form)
        elif grant_type == "refresh_token":
            tokens = _refresh(sandbox, form)
        elif grant_type == DEVICE_CODE_GRANT and sandbox.profile.device_authorize_path:
            tokens = _redeem_device_code(sandbox, form)
        else:
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}.")
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(tokens.answer(), headers=_NO_STORE)


async def revoke(request: Request) -> Response:
    """POST: revoke the grant behind a token; 200 even for unknown tokens (RFC 7009 §2.2)."""
    sandbox = sandbox_state(request)
    sandbox.stats.revoke_calls += 1
    try:
        form = await read_oauth_form(request)
        check_client(
            request.headers.get("authorization"),
            sandbox.config.client_id,
            sandbox.config.client_secret,
        )
        token_value = form.get("token")
        if not token_value:
            raise OAuthError("invalid_request", "The token parameter is required.")
        hint = form.get("token_type_hint")
        if hint not in (None, "access_token", "refresh_token"):
            raise OAuthError("unsupported_token_type", f"Unsupported token_type_hint {hint!r}.")
    except OAuthError as exc:
        return oauth_error_response(exc)
    sandbox.grants.revoke_by_token(token_value)
    return Response(status_code=200, headers=_NO_STORE)
