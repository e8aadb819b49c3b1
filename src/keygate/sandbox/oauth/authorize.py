"""The authorization endpoint (RFC 6749 §4.1.1): consent page, Approve/Deny, redirects."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keygate.sandbox.oauth.pages import consent_page, error_page
from keygate.sandbox.oauth.protocol import OAuthError, add_query, split_scopes
from keygate.sandbox.request_context import sandbox_state
from keygate.sandbox.state import ConsentRequest, SandboxState

# How long a consent page may stay open before Approve stops working.
_CONSENT_TTL = 900


def _redirect(uri: str, params: dict[str, str | None]) -> RedirectResponse:
    kept = {key: value for key, value in params.items() if value is not None}
    return RedirectResponse(add_query(uri, kept), status_code=302)


def _error_redirect(uri: str, error: OAuthError, state: str | None) -> RedirectResponse:
    params = {"error": error.error, "error_description": error.description, "state": state}
    return _redirect(uri, params)


def _validate_request(sandbox: SandboxState, query: dict[str, str]) -> ConsentRequest:
    """Check everything that may be answered by redirect; raise `OAuthError` otherwise."""
    profile = sandbox.profile
    if query.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response_type must be code.")
    scopes = split_scopes(query.get("scope"))
    if not scopes:
        raise OAuthError("invalid_scope", "The scope parameter is required.")
    unknown = [scope for scope in scopes if not profile.scope_pattern.fullmatch(scope)]
    if unknown:
        raise OAuthError("invalid_scope", f"Unknown scope: {' '.join(unknown)}.")
    challenge = query.get("code_challenge") or None
    method = query.get("code_challenge_method")
    if challenge is None and profile.pkce_required:
        raise OAuthError("invalid_request", "PKCE code_challenge is required.")
    if challenge is not None and method != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256.")
    if challenge is None and method:
        raise OAuthError("invalid_request", "code_challenge_method without code_challenge.")
    return ConsentRequest(
        client_id=query["client_id"],
        redirect_uri=query["redirect_uri"],
        scopes=scopes,
        state=query.get("state"),
        code_challenge=challenge,
        expires_at=sandbox.clock.now() + _CONSENT_TTL,
    )


def _approve(sandbox: SandboxState, consent: ConsentRequest) -> RedirectResponse:
    code = sandbox.grants.issue_code(
        consent.client_id,
        consent.redirect_uri,
        consent.scopes,
        consent.code_challenge,
        sandbox.config.code_ttl,
    )
    return _redirect(consent.redirect_uri, {"code": code, "state": consent.state})


async def authorize(request: Request) -> Response:
    """GET: show the consent page (or approve at once); errors never leave for unknown URIs."""
    sandbox = sandbox_state(request)
    sandbox.stats.authorize_calls += 1
    provider = sandbox.profile.provider
    query = dict(request.query_params)
    if query.get("client_id") != sandbox.config.client_id:
        return error_page(provider, "invalid_client", "Unknown client_id.")
    redirect_uri = query.get("redirect_uri", "")
    if redirect_uri not in sandbox.config.redirect_uris:
        return error_page(provider, "invalid_request", "redirect_uri is not registered.")
    try:
        consent = _validate_request(sandbox, query)
    except OAuthError as exc:
        return _error_redirect(redirect_uri, exc, query.get("state"))
    if sandbox.config.auto_approve:
        return _approve(sandbox, consent)
    request_id = secrets.token_urlsafe(16)
    sandbox.consents[request_id] = consent
    return consent_page(
        provider, sandbox.config.client_name, consent.scopes, request.url.path, request_id
    )


async def decide(request: Request) -> Response:
    """POST: the person pressed Approve or Deny on the consent page."""
    sandbox = sandbox_state(request)
    provider = sandbox.profile.provider
    form = await request.form()
    request_id = str(form.get("request_id", ""))
    consent = sandbox.consents.pop(request_id, None)
    if consent is None or sandbox.clock.now() >= consent.expires_at:
        return error_page(provider, "invalid_request", "This authorization request has expired.")
    if consent.redirect_uri not in sandbox.config.redirect_uris:
        return error_page(provider, "invalid_request", "redirect_uri is no longer registered.")
    if form.get("decision") != "approve":
        denied = OAuthError("access_denied", "The user denied the authorization request.")
        return _error_redirect(consent.redirect_uri, denied, consent.state)
    return _approve(sandbox, consent)
