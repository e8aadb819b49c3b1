"""The Klaviyo sandbox app: OAuth server, `/api` endpoints and the admin API on one origin."""

from __future__ import annotations

import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from keygate.sandbox.admin import AdminInputError, admin_routes, read_json, sandbox_app
from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.klaviyo.gate import BURST_STEADY_XS, Endpoint, klaviyo_endpoint
from keygate.sandbox.klaviyo.jsonapi import jsonapi_response, resource_url
from keygate.sandbox.klaviyo.lists import (
    add_members,
    create_list,
    delete_list,
    get_list,
    list_lists,
    list_members,
    remove_members,
    update_list,
)
from keygate.sandbox.klaviyo.profiles import (
    create_profile,
    get_profile,
    list_profiles,
    update_profile,
)
from keygate.sandbox.klaviyo.seed import seed_demo_data
from keygate.sandbox.klaviyo.store import ACCOUNT_ID, KLAVIYO_OAUTH, KlaviyoState
from keygate.sandbox.oauth.routes import oauth_routes
from keygate.sandbox.request_context import public_origin


@klaviyo_endpoint("accounts", BURST_STEADY_XS, "accounts:read")
async def list_accounts(request: Request, sandbox: KlaviyoState) -> Response:
    """GET /api/accounts: the one account behind the credential."""
    origin = public_origin(request, sandbox)
    account = {
        "type": "account",
        "id": ACCOUNT_ID,
        "attributes": {
            "test_account": True,
            "contact_information": {
                "default_sender_name": "Keygate Sandbox",
                "default_sender_email": "sender@sandbox.example",
                "website_url": "https://sandbox.example",
                "organization_name": "Keygate Sandbox Store",
                "street_address": {
                    "address1": "1 Loopback Way",
                    "address2": "",
                    "city": "Boston",
                    "region": "MA",
                    "country": "US",
                    "zip": "02110",
                },
            },
            "industry": "Software",
            "timezone": "America/New_York",
            "preferred_currency": "USD",
            "public_api_key": "SbXkv1",
            "locale": "en-US",
        },
        "links": {"self": resource_url(origin, f"/api/accounts/{ACCOUNT_ID}")},
    }
    links = {"self": resource_url(origin, request.url.path)}
    return jsonapi_response({"data": [account], "links": links})


async def add_private_key(request: Request) -> Response:
    """POST /_sandbox/private_keys `{"key"?: "pk_…"}`: accept another private key."""
    sandbox = request.app.state.sandbox
    if not isinstance(sandbox, KlaviyoState):
        raise TypeError("app.state.sandbox is not a KlaviyoState")
    body = await read_json(request)
    key = body.get("key") or f"pk_{secrets.token_hex(17)}"
    if not isinstance(key, str) or not key.startswith("pk_"):
        raise AdminInputError("key must be a string starting with pk_")
    sandbox.private_keys.add(key)
    return JSONResponse({"key": key}, status_code=201)


def _api(path: str, endpoint: Endpoint, methods: list[str]) -> list[Route]:
    # Klaviyo answers with and without the trailing slash; its own links carry one.
    return [Route(p, endpoint, methods=methods) for p in (path, path + "/")]


def klaviyo_routes() -> list[BaseRoute]:
    """Return every route of the Klaviyo sandbox."""
    routes: list[BaseRoute] = [*oauth_routes(KLAVIYO_OAUTH), *admin_routes()]
    routes.append(Route("/_sandbox/private_keys", add_private_key, methods=["POST"]))
    routes += _api("/api/accounts", list_accounts, ["GET"])
    routes += _api("/api/profiles", list_profiles, ["GET"])
    routes += _api("/api/profiles", create_profile, ["POST"])
    routes += _api("/api/profiles/{id}", get_profile, ["GET"])
    routes += _api("/api/profiles/{id}", update_profile, ["PATCH"])
    routes += _api("/api/lists", list_lists, ["GET"])
    routes += _api("/api/lists", create_list, ["POST"])
    routes += _api("/api/lists/{id}", get_list, ["GET"])
    routes += _api("/api/lists/{id}", update_list, ["PATCH"])
    routes += _api("/api/lists/{id}", delete_list, ["DELETE"])
    routes += _api("/api/lists/{id}/relationships/profiles", add_members, ["POST"])
    routes += _api("/api/lists/{id}/relationships/profiles", remove_members, ["DELETE"])
    routes += _api("/api/lists/{id}/profiles", list_members, ["GET"])
    return routes


def create_klaviyo_app(config: SandboxConfig, clock: SandboxClock | None = None) -> Starlette:
    """Build the Klaviyo sandbox; its state is `app.state.sandbox` (a `KlaviyoState`)."""
    return sandbox_app(klaviyo_routes(), KlaviyoState(config, clock), seed_demo_data)
