"""Request helpers shared by the sandbox handlers: typed state access and form/JSON reads."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from keygate.sandbox.oauth.protocol import OAuthError
from keygate.sandbox.state import SandboxState

FORM_TYPE = "application/x-www-form-urlencoded"


def sandbox_state(request: Request) -> SandboxState:
    """Return the sandbox state stored on the app (`app.state.sandbox`)."""
    state = request.app.state.sandbox
    if not isinstance(state, SandboxState):
        raise TypeError("app.state.sandbox is not a SandboxState")
    return state


def public_origin(request: Request, state: SandboxState) -> str:
    """Return the origin callers see: the configured public URL, else the request's."""
    configured = state.config.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


async def read_oauth_form(request: Request) -> dict[str, str]:
    """Read an OAuth form body; anything but form encoding is an `invalid_request`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise OAuthError("invalid_request", f"The request body must be {FORM_TYPE}.")
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def json_object(value: Any) -> dict[str, Any] | None:
    """Return `value` if it is a JSON object, else None."""
    return value if isinstance(value, dict) else None
