"""Keygate wired to one generic provider sandbox per catalog app, all on one loopback origin.

Every app of the catalog (built-in and `tests/support/catalog`) gets the sandbox its own entry
configures, under `/{app}` of one server; Keygate's `sandbox_origin` override for the app sends
each URL it renders there, so the sandbox sees the host the connection's parameters made. The
sandboxes and Keygate share one clock that tests move to expire tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keygate.catalog.loader import load_catalog
from keygate.catalog.model import AppSpec
from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.generic import ProviderState, create_generic_app, generic_overrides
from tests.support.harness import KeygateHarness
from tests.support.servers import ServerThread, free_port

FIXTURES = Path(__file__).parent / "catalog"
"""The test catalog directory, whose apps join the built-in ones."""


def every_app() -> dict[str, AppSpec]:
    """Every app the test Keygate serves: the built-in catalog and the test catalog files."""
    return load_catalog(FIXTURES)


class _ByApp:
    """ASGI: `/{app}/…` goes to that app's sandbox with the prefix taken off."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        name, _, rest = scope["path"].lstrip("/").partition("/")
        app = self.apps.get(name)
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"no such sandbox"})
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        prefix = b"/" + name.encode()
        await app({**scope, "path": "/" + rest, "raw_path": raw[len(prefix) :]}, receive, send)


class GenericKeygate:
    """Keygate plus a generic sandbox for every catalog app."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        port = free_port()
        self.callback = f"http://127.0.0.1:{port}/oauth/callback"
        self.clock = SandboxClock()
        self.catalog = every_app()
        self.apps = {
            name: create_generic_app(spec, self.callback, self.clock)
            for name, spec in self.catalog.items()
        }
        self.server = ServerThread(_ByApp(self.apps), lifespan="off").start()
        self.keygate = KeygateHarness(
            data_dir,
            database_url,
            port=port,
            clock=self.clock.now,
            catalog_dir=FIXTURES,
            apps={name: generic_overrides(f"{self.server.url}/{name}") for name in self.catalog},
        )

    def provider(self, app: str) -> ProviderState:
        """The state of an app's sandbox (counters, refusals, issued tokens)."""
        state: ProviderState = self.apps[app].state.provider
        return state

    def sandbox_url(self, app: str) -> str:
        """The origin Keygate sends that app's URLs to."""
        return f"{self.server.url}/{app}"

    def stop(self) -> None:
        """Stop Keygate and the sandboxes."""
        self.keygate.stop()
        self.server.stop()
