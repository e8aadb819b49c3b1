"""Keygate wired to the Klaviyo and Constant Contact sandboxes, as a deployment would be."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from keygate.catalog.loader import AppOverrides
from keygate.sandbox import SandboxConfig, create_constant_contact_app, create_klaviyo_app
from tests.support.harness import KeygateHarness, Tenant
from tests.support.servers import ServerThread, free_port

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"


@dataclass
class Sandbox:
    """One provider sandbox served on loopback, with its in-process state."""

    app: Any
    server: ServerThread

    @property
    def url(self) -> str:
        """The sandbox origin."""
        return self.server.url

    @property
    def state(self) -> Any:
        """The sandbox's state (counters, fault switches, config)."""
        return self.app.state.sandbox

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the sandbox's admin API."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            response = (
                client.get(f"/_sandbox/{path}")
                if body is None
                else client.post(f"/_sandbox/{path}", json=body)
            )
            response.raise_for_status()
            return response.json()

    def mint_tokens(self, scope: str | None = None) -> dict[str, Any]:
        """A token set minted directly by the sandbox (no browser dance)."""
        return dict(self.admin("tokens", {"scope": scope} if scope else {}))


def start_sandbox(provider: str, redirect_uri: str, **config: Any) -> Sandbox:
    """Serve a fresh sandbox that accepts Keygate's callback URL."""
    settings = SandboxConfig(redirect_uris=[redirect_uri], rate_limit=False, **config)
    app = (create_klaviyo_app if provider == "klaviyo" else create_constant_contact_app)(settings)
    return Sandbox(app, ServerThread(app, lifespan="off").start())


def sandbox_overrides(klaviyo: Sandbox, cc: Sandbox) -> dict[str, AppOverrides]:
    """Point the seed apps' API and OAuth URLs at the sandboxes, with the registered client."""
    return {
        "klaviyo": AppOverrides(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=klaviyo.url,
            authorize_url=f"{klaviyo.url}/oauth/authorize",
            token_url=f"{klaviyo.url}/oauth/token",
            revoke_url=f"{klaviyo.url}/oauth/revoke",
        ),
        "constant-contact": AppOverrides(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=cc.url,
            authorize_url=f"{cc.url}/oauth2/default/v1/authorize",
            token_url=f"{cc.url}/oauth2/default/v1/token",
        ),
    }


class SandboxedKeygate:
    """Keygate plus both sandboxes; Keygate's callback is registered with each."""

    def __init__(self, data_dir: Path, database_url: str, **settings: Any) -> None:
        port = free_port()
        callback = f"http://127.0.0.1:{port}/oauth/callback"
        self.klaviyo = start_sandbox("klaviyo", callback)
        self.cc = start_sandbox("constant-contact", callback)
        self.keygate = KeygateHarness(
            data_dir,
            database_url,
            port=port,
            apps=sandbox_overrides(self.klaviyo, self.cc),
            **settings,
        )

    def sandbox(self, app: str) -> Sandbox:
        """The sandbox standing in for an app."""
        return self.klaviyo if app == "klaviyo" else self.cc

    def tenant(self) -> Tenant:
        """A fresh workspace and key."""
        return self.keygate.tenant()

    def minted_connection(
        self, tenant: Tenant, app: str, expires_in: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        """An ACTIVE connection holding a token set minted by the app's sandbox: (id, tokens).

        `expires_in` overrides the lifetime Keygate records (negative: already expired).
        """
        tokens = self.sandbox(app).mint_tokens()
        values = {"access_token": tokens["access_token"]}
        if tokens.get("refresh_token"):
            values["refresh_token"] = tokens["refresh_token"]
        lifetime = expires_in if expires_in is not None else tokens.get("expires_in")
        record = self.keygate.import_connection(tenant, app, values, expires_in=lifetime)
        return record.id, tokens

    def oauth_connection(self, tenant: Tenant, app: str, expires_in: int | None = None) -> str:
        """An ACTIVE connection holding a token set minted by the app's sandbox."""
        return self.minted_connection(tenant, app, expires_in)[0]

    def stop(self) -> None:
        """Stop Keygate and the sandboxes."""
        self.keygate.stop()
        self.klaviyo.server.stop()
        self.cc.server.stop()
