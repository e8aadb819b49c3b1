"""`keygate serve --sandbox`: Keygate wired to the provider sandboxes, for an offline tour."""

from __future__ import annotations

import asyncio
import threading

from keygate.sandbox.config import DEFAULT_PRIVATE_KEY, SandboxConfig
from keygate.sandbox.runner import serve_sandboxes_async

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandboxes' well-known demo client


def sandbox_environment(host: str, klaviyo_port: int, cc_port: int) -> dict[str, str]:
    """KEYGATE_APPS__… variables pointing both seed apps at the sandboxes."""
    klaviyo = f"http://{host}:{klaviyo_port}"
    cc = f"http://{host}:{cc_port}"
    values = {
        "KLAVIYO": {
            "BASE_URL": klaviyo,
            "AUTHORIZE_URL": f"{klaviyo}/oauth/authorize",
            "TOKEN_URL": f"{klaviyo}/oauth/token",
            "REVOKE_URL": f"{klaviyo}/oauth/revoke",
        },
        "CONSTANT_CONTACT": {
            "BASE_URL": cc,
            "AUTHORIZE_URL": f"{cc}/oauth2/default/v1/authorize",
            "TOKEN_URL": f"{cc}/oauth2/default/v1/token",
            "DEVICE_AUTHORIZATION_URL": f"{cc}/oauth2/default/v1/device/authorize",
        },
    }
    env = {}
    for app, fields in values.items():
        fields.update(CLIENT_ID=CLIENT_ID, CLIENT_SECRET=CLIENT_SECRET)
        for field, value in fields.items():
            env[f"KEYGATE_APPS__{app}__{field}"] = value
    return env


def start_sandboxes(host: str, klaviyo_port: int, cc_port: int, public_url: str) -> None:
    """Serve both sandboxes from a daemon thread, accepting Keygate's OAuth callback."""

    def config(_provider: str, _port: int) -> SandboxConfig:
        return SandboxConfig(redirect_uris=[f"{public_url}/oauth/callback"])

    def run() -> None:
        asyncio.run(serve_sandboxes_async(host, klaviyo_port, cc_port, config))

    threading.Thread(target=run, name="keygate-sandboxes", daemon=True).start()


def tour(public_url: str, host: str, klaviyo_port: int, cc_port: int) -> str:
    """What to tell a person who started sandbox mode."""
    return (
        f"Sandbox mode: Klaviyo at http://{host}:{klaviyo_port}, Constant Contact at "
        f"http://{host}:{cc_port} (in memory, reset on restart).\n"
        f"Create a connection (POST {public_url}/connections) and open its url: the sandbox's "
        f"consent page stands in for the provider's.\n"
        f"Klaviyo private key accepted by the sandbox: {DEFAULT_PRIVATE_KEY}"
    )
