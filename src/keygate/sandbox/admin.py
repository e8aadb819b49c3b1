"""The `/_sandbox/` admin API: lets tests that run a sandbox in a subprocess control it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from keygate.sandbox.faults import SandboxStarlette, TokenEndpointMode
from keygate.sandbox.oauth.protocol import split_scopes
from keygate.sandbox.request_context import sandbox_state
from keygate.sandbox.state import SandboxState


class AdminInputError(ValueError):
    """A malformed admin request; answered with 400 `{"error": message}`."""


def _is_int_or_none(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# Which config fields the admin API may change, and the check each value must pass.
_CONFIG_FIELDS: dict[str, Callable[[object], bool]] = {
    "auto_approve": lambda v: isinstance(v, bool),
    "rate_limit": lambda v: isinstance(v, bool),
    "rotating_refresh_tokens": lambda v: v is None or isinstance(v, bool),
    "access_token_ttl": _is_int_or_none,
    "refresh_token_idle_ttl": _is_int_or_none,
    "code_ttl": lambda v: _is_int_or_none(v) and v is not None,
    "device_code_ttl": lambda v: _is_int_or_none(v) and v is not None,
    "device_poll_interval": lambda v: _is_int_or_none(v) and v is not None,
    "redirect_uris": _is_str_list,
    "public_base_url": lambda v: isinstance(v, str),
    "client_name": lambda v: isinstance(v, str),
    "token_delay": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
}


async def read_json(request: Request) -> dict[str, Any]:
    """Read an optional JSON object body (empty body means `{}`)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise AdminInputError("body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise AdminInputError("body must be a JSON object")
    return body


def _config_snapshot(request: Request) -> dict[str, object]:
    sandbox = sandbox_state(request)
    config = sandbox.config
    return {
        "client_id": config.client_id,
        "redirect_uris": list(config.redirect_uris),
        "auto_approve": config.auto_approve,
        "access_token_ttl": sandbox.access_ttl,
        "rotating_refresh_tokens": sandbox.rotating,
        "refresh_token_idle_ttl": sandbox.refresh_idle_ttl,
        "code_ttl": config.code_ttl,
        "rate_limit": config.rate_limit,
        "public_base_url": config.public_base_url,
    }


async def stats(request: Request) -> Response:
    """GET: counters, fault switches and effective config."""
    sandbox = sandbox_state(request)
    return JSONResponse(
        {
            **sandbox.stats.as_dict(),
            "faults": sandbox.faults.as_dict(),
            "config": _config_snapshot(request),
        }
    )


async def faults(request: Request) -> Response:
    """POST `{"token_endpoint": "ok|error500|slow|down", "token_delay": s}`."""
    sandbox = sandbox_state(request)
    body = await read_json(request)
    if "token_endpoint" in body:
        try:
            sandbox.faults.token_endpoint = TokenEndpointMode(body["token_endpoint"])
        except ValueError as exc:
            raise AdminInputError("token_endpoint must be ok, error500, slow or down") from exc
    if "token_delay" in body:
        delay = body["token_delay"]
        if not _CONFIG_FIELDS["token_delay"](delay):
            raise AdminInputError("token_delay must be a non-negative number")
        sandbox.faults.token_delay = float(delay)
    return JSONResponse(sandbox.faults.as_dict())


async def configure(request: Request) -> Response:
    """POST: change config fields at runtime (see `_CONFIG_FIELDS`)."""
    sandbox = sandbox_state(request)
    body = await read_json(request)
    for key, value in body.items():
        check = _CONFIG_FIELDS.get(key)
        if check is None:
            raise AdminInputError(f"unknown or read-only config field {key!r}")
        if not check(value):
            raise AdminInputError(f"invalid value for {key!r}")
    for key, value in body.items():
        setattr(sandbox.config, key, list(value) if isinstance(value, list) else value)
    return JSONResponse(_config_snapshot(request))


async def revoke_all(request: Request) -> Response:
    """POST: every grant dies (access and refresh tokens stop working)."""
    revoked = sandbox_state(request).grants.revoke_all()
    return JSONResponse({"revoked_grants": revoked})


async def expire_access_tokens(request: Request) -> Response:
    """POST: every access token expires now; refresh tokens keep working."""
    sandbox_state(request).grants.expire_access_tokens()
    return JSONResponse({"expired": True})


async def mint_tokens(request: Request) -> Response:
    """POST `{"scope"?: "…"}`: issue an access+refresh token pair without the browser."""
    sandbox = sandbox_state(request)
    body = await read_json(request)
    scope = body.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise AdminInputError("scope must be a space-separated string")
    tokens = sandbox.mint_direct(split_scopes(scope) or None)
    return JSONResponse(tokens.answer(), status_code=201)


async def advance_clock(request: Request) -> Response:
    """POST `{"advance": seconds}`: move sandbox time forward."""
    sandbox = sandbox_state(request)
    body = await read_json(request)
    seconds = body.get("advance")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise AdminInputError("advance must be a non-negative number of seconds")
    sandbox.clock.advance(float(seconds))
    return JSONResponse({"now": sandbox.clock.now()})


async def reset(request: Request) -> Response:
    """POST `{"tokens"?: bool}`: clear data, counters, faults, rate windows (and grants)."""
    sandbox = sandbox_state(request)
    body = await read_json(request)
    tokens = body.get("tokens", False)
    if not isinstance(tokens, bool):
        raise AdminInputError("tokens must be a boolean")
    sandbox.reset(tokens=tokens)
    return JSONResponse({"reset": True, "tokens": tokens})


def admin_error_response(request: Request, exc: Exception) -> Response:
    """Render an `AdminInputError` as 400 JSON."""
    return JSONResponse({"error": str(exc)}, status_code=400)


def admin_routes() -> list[Route]:
    """Return the admin routes every sandbox serves under `/_sandbox/`."""
    return [
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/faults", faults, methods=["POST"]),
        Route("/_sandbox/config", configure, methods=["POST"]),
        Route("/_sandbox/revoke_all", revoke_all, methods=["POST"]),
        Route("/_sandbox/expire_access_tokens", expire_access_tokens, methods=["POST"]),
        Route("/_sandbox/tokens", mint_tokens, methods=["POST"]),
        Route("/_sandbox/clock", advance_clock, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
    ]


State = TypeVar("State", bound=SandboxState)


def sandbox_app(
    routes: Sequence[BaseRoute], state: State, seed: Callable[[State], None]
) -> Starlette:
    """A sandbox app serving `routes` (plus admin input errors as 400) over `state`, which
    `seed` fills with demo data first when the config asks for it; `app.state.sandbox`."""
    app = SandboxStarlette(
        routes=list(routes), exception_handlers={AdminInputError: admin_error_response}
    )
    if state.config.seed_data:
        seed(state)
    app.state.sandbox = state
    return app
