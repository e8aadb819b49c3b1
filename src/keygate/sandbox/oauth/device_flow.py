"""RFC 8628 device authorization grant endpoints (Constant Contact).

With `auto_approve` the device authorization is approved the moment it is created, so scripted
tests can poll the token endpoint straight away.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.oauth.device_grants import DeviceStatus
from keygate.sandbox.oauth.pages import device_page, error_page, message_page
from keygate.sandbox.oauth.protocol import OAuthError, parse_basic_auth, split_scopes
from keygate.sandbox.oauth.token import injected_fault, oauth_error_response
from keygate.sandbox.request_context import public_origin, read_oauth_form, sandbox_state
from keygate.sandbox.state import SandboxState


def _client_id(request: Request, sandbox: SandboxState, form: dict[str, str]) -> str:
    # Public clients send client_id in the body; confidential ones may use Basic auth.
    basic = parse_basic_auth(request.headers.get("authorization"))
    config = sandbox.config
    if basic is not None:
        if basic != (config.client_id, config.client_secret):
            raise OAuthError("invalid_client", "Client authentication failed.", status=401)
        return basic[0]
    if form.get("client_id") != config.client_id:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    return config.client_id


async def device_authorize(request: Request) -> Response:
    """POST: start a device authorization and return the codes and verification URIs."""
    sandbox = sandbox_state(request)
    sandbox.stats.device_authorize_calls += 1
    try:
        form = await read_oauth_form(request)
        fault = await injected_fault(sandbox)
        if fault is not None:
            return fault
        client_id = _client_id(request, sandbox, form)
        scopes = split_scopes(form.get("scope"))
        if not scopes:
            raise OAuthError("invalid_scope", "The scope parameter is required.")
        unknown = [s for s in scopes if not sandbox.profile.scope_pattern.fullmatch(s)]
        if unknown:
            raise OAuthError("invalid_scope", f"Unknown scope: {' '.join(unknown)}.")
    except OAuthError as exc:
        return oauth_error_response(exc)
    ttl = sandbox.config.device_code_ttl
    record = sandbox.devices.start(client_id, scopes, ttl)
    if sandbox.config.auto_approve:
        record.status = DeviceStatus.APPROVED
    complete_query = urlencode({"user_code": record.user_code})
    verify_uri = public_origin(request, sandbox) + str(sandbox.profile.device_verify_path)
    return JSONResponse(
        {
            "device_code": record.device_code,
            "user_code": record.user_code,
            "verification_uri": verify_uri,
            "verification_uri_complete": f"{verify_uri}?{complete_query}",
            "expires_in": ttl,
            "interval": sandbox.config.device_poll_interval,
        },
        headers={"Cache-Control": "no-store"},
    )


async def device_verify(request: Request) -> Response:
    """GET: the page where the person enters or confirms the user code."""
    sandbox = sandbox_state(request)
    user_code = request.query_params.get("user_code", "")
    return device_page(sandbox.profile.provider, request.url.path, user_code)


async def device_decide(request: Request) -> Response:
    """POST: approve or deny the device authorization named by the user code."""
    sandbox = sandbox_state(request)
    provider = sandbox.profile.provider
    form = await request.form()
    record = sandbox.devices.find_user_code(str(form.get("user_code", "")))
    if record is None:
        return error_page(provider, "invalid_request", "Unknown or expired code.", 404)
    if form.get("decision") == "approve":
        record.status = DeviceStatus.APPROVED
        return message_page(provider, "Device approved", "You can return to your device.")
    record.status = DeviceStatus.DENIED
    return message_page(provider, "Device denied", "The device was not given access.")
