"""Keygate wired to the Klaviyo and Constant Contact sandboxes, as a deployment would be."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from keygate.catalog.loader import AppOverrides, load_catalog
from keygate.sandbox import (
    CLIENT_ID,
    CLIENT_SECRET,
    SANDBOXES,
    SandboxConfig,
    sandbox_for,
    sandbox_urls,
)
from keygate.sandbox.clock import SandboxClock
from tests.support.harness import KeygateHarness, Tenant
from tests.support.servers import ServerThread, free_port


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


def start_sandbox(
    provider: str, redirect_uri: str, clock: SandboxClock | None = None, **config: Any
) -> Sandbox:
    """Serve a fresh sandbox for the app `provider` that accepts Keygate's callback URL."""
    settings = SandboxConfig(redirect_uris=[redirect_uri], rate_limit=False, **config)
    app = sandbox_for(provider).create(settings, clock)
    return Sandbox(app, ServerThread(app, lifespan="off").start())


def sandbox_app_urls(app: str, sandbox: Sandbox) -> dict[str, str]:
    """The app's catalog URLs (API base and OAuth endpoints) moved to the sandbox's origin."""
    return sandbox_urls(load_catalog()[app], sandbox.url)


def sandbox_override(app: str, sandbox: Sandbox) -> AppOverrides:
    """Point one app's API and OAuth URLs at its sandbox, with the registered client."""
    return AppOverrides(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        **sandbox_app_urls(app, sandbox),
    )


def sandbox_env(app: str, sandbox: Sandbox) -> dict[str, str]:
    """The same as `KEYGATE_APPS__<APP>__<FIELD>` variables, for a Keygate subprocess."""
    prefix = "KEYGATE_APPS__" + app.upper().replace("-", "_") + "__"
    fields = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    fields.update(sandbox_app_urls(app, sandbox))
    return {prefix + name.upper(): value for name, value in fields.items()}


class SandboxedKeygate:
    """Keygate plus every registered sandbox; Keygate's callback is registered with each.

    All of them share one clock: wall time, until a test stops it and moves it (`freeze_time`,
    `advance`), so token lifetimes pass at Keygate and at the provider alike, without waiting.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        *,
        sandbox_config: dict[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        """`sandbox_config` goes to every sandbox's SandboxConfig (e.g. `seed_data=True`),
        `settings` to Keygate's."""
        port = free_port()
        callback = f"http://127.0.0.1:{port}/oauth/callback"
        self.clock = SandboxClock()
        self.sandboxes = {
            spec.app: start_sandbox(spec.app, callback, self.clock, **(sandbox_config or {}))
            for spec in SANDBOXES
        }
        self.keygate = KeygateHarness(
            data_dir,
            database_url,
            port=port,
            clock=self.clock.now,
            apps={app: sandbox_override(app, made) for app, made in self.sandboxes.items()},
            **settings,
        )

    @property
    def klaviyo(self) -> Sandbox:
        """The Klaviyo sandbox."""
        return self.sandboxes["klaviyo"]

    @property
    def cc(self) -> Sandbox:
        """The Constant Contact sandbox."""
        return self.sandboxes["constant-contact"]

    def freeze_time(self) -> None:
        """Stop the shared clock: from now on only `advance` moves it."""
        self.clock.freeze()

    def advance(self, seconds: float) -> None:
        """Move the shared clock forward."""
        self.clock.advance(seconds)

    def resume_time(self) -> None:
        """Back to wall time, for the tests that follow."""
        self.clock.source = time.time
        self.clock.offset = 0.0

    def sandbox(self, app: str) -> Sandbox:
        """The sandbox standing in for an app."""
        return self.sandboxes[app]

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
        for made in self.sandboxes.values():
            made.server.stop()
