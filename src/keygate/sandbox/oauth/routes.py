"""Routes of a sandbox authorization server, built from its provider profile."""

from __future__ import annotations

from starlette.routing import Route

from keygate.sandbox.oauth import authorize, device_flow, token
from keygate.sandbox.state import OAuthProfile


def oauth_routes(profile: OAuthProfile) -> list[Route]:
    """Return the authorize, token and (where the provider has them) revoke/device routes."""
    routes = [
        Route(profile.authorize_path, authorize.authorize, methods=["GET"]),
        Route(profile.authorize_path, authorize.decide, methods=["POST"]),
        Route(profile.token_path, token.token, methods=["POST"]),
    ]
    if profile.revoke_path:
        routes.append(Route(profile.revoke_path, token.revoke, methods=["POST"]))
    if profile.device_authorize_path and profile.device_verify_path:
        routes += [
            Route(profile.device_authorize_path, device_flow.device_authorize, methods=["POST"]),
            Route(profile.device_verify_path, device_flow.device_verify, methods=["GET"]),
            Route(profile.device_verify_path, device_flow.device_decide, methods=["POST"]),
        ]
    return routes
