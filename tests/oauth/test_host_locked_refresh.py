"""A SQLite store refreshes under a host lock, not the database's write lock, so a
re-authorization can land while the provider answers a refresh: what it stored must stand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from keygate.oauth.lifecycle import RefreshPolicy, TokenLifecycle
from keygate.runtime import Runtime
from keygate.settings import Settings
from keygate.store.schema import utcnow
from tests.support.processes import Deployment
from tests.support.sandboxes import Sandbox, start_sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A Constant Contact sandbox (rotating refresh tokens)."""
    made = start_sandbox("constant-contact", "http://127.0.0.1:1/oauth/callback")
    yield made
    made.server.stop()


def test_a_reauthorization_during_the_refresh_is_kept(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = Deployment(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'keygate.db'}", sandbox, "constant-contact"
    )
    for name, value in deployment.env().items():
        if name.startswith("KEYGATE_"):
            monkeypatch.setenv(name, value)
    old = sandbox.mint_tokens()
    _, conn_id = deployment.prepare(
        {"access_token": old["access_token"], "refresh_token": old["refresh_token"]},
        expires_in=-10,
    )
    newer = sandbox.mint_tokens()  # what a person's re-authorization brings

    async def run() -> tuple[str, str, int]:
        runtime = await Runtime.open(Settings())

        async def reauthorize_meanwhile(step: str, connection_id: str) -> None:
            if step == "token_received":  # the provider has answered; nothing written yet
                await runtime.connections.activate(
                    connection_id,
                    {"access_token": newer["access_token"], "refresh_token": "re-authorized"},
                    utcnow() + timedelta(hours=1),
                )

        try:
            lifecycle = TokenLifecycle(
                runtime.connections,
                runtime.cache.credentials,
                runtime.upstream,
                RefreshPolicy.from_settings(runtime.settings),
                lambda connection_id: f"reconnect {connection_id}",
                on_step=reauthorize_meanwhile,
            )
            app = runtime.apps["constant-contact"]
            connection = await runtime.connections.get(conn_id)
            stale = await runtime.connections.credentials(conn_id)
            assert connection is not None
            assert stale is not None
            got = await lifecycle.refresh(app, connection, stale.version)
            stored = await runtime.connections.credentials(conn_id)
            assert stored is not None
            return (
                got.get("access_token") or "",
                stored.get("refresh_token") or "",
                stored.version - stale.version,
            )
        finally:
            await runtime.close()

    access, refresh, versions = asyncio.run(run())
    assert access == newer["access_token"]  # the caller gets the re-authorized token
    assert refresh == "re-authorized"  # and the store still holds it, not the refresh's
    assert versions == 1  # one write: the re-authorization's
    assert sandbox.admin("stats")["token_requests"] == {"refresh_token": 1}
