"""The `/_sandbox/` admin API, token-endpoint faults (in-process and over real sockets), runner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.constant_contact.app import create_constant_contact_app
from keygate.sandbox.klaviyo.store import KlaviyoState
from keygate.sandbox.runner import serve_sandboxes_async
from tests.support.servers import free_port

from .oauth_helpers import CC_TOKEN, KLAVIYO_TOKEN, cc_tokens, klaviyo_tokens, token_call

REVISION = {"revision": "2026-01-15"}


async def refresh(client: httpx.AsyncClient, path: str, token: str) -> httpx.Response:
    return await token_call(client, path, {"grant_type": "refresh_token", "refresh_token": token})


async def test_stats_count_calls(klaviyo: httpx.AsyncClient) -> None:
    tokens = await klaviyo_tokens(klaviyo)
    await refresh(klaviyo, KLAVIYO_TOKEN, tokens["refresh_token"])
    await klaviyo.get(
        "/api/profiles", headers={"Authorization": f"Bearer {tokens['access_token']}", **REVISION}
    )
    stats = (await klaviyo.get("/_sandbox/stats")).json()
    assert stats["token_requests"] == {"authorization_code": 1, "refresh_token": 1}
    assert stats["authorize_calls"] == 1
    assert stats["api_calls"] == 1
    assert stats["revoke_calls"] == 0
    assert stats["faults"] == {"token_endpoint": "ok", "token_delay": 2.0}
    assert stats["config"]["access_token_ttl"] == 3600


async def test_error500_fault(cc: httpx.AsyncClient) -> None:
    tokens = await cc_tokens(cc)
    assert (
        await cc.post("/_sandbox/faults", json={"token_endpoint": "error500"})
    ).status_code == 200
    response = await refresh(cc, CC_TOKEN, tokens["refresh_token"])
    assert response.status_code == 500
    await cc.post("/_sandbox/faults", json={"token_endpoint": "ok"})
    assert (await refresh(cc, CC_TOKEN, tokens["refresh_token"])).status_code == 200


async def test_slow_fault(cc: httpx.AsyncClient) -> None:
    tokens = await cc_tokens(cc)
    await cc.post("/_sandbox/faults", json={"token_endpoint": "slow", "token_delay": 0.3})
    started = time.monotonic()
    response = await refresh(cc, CC_TOKEN, tokens["refresh_token"])
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_down_fault_in_process_answers_503(klaviyo: httpx.AsyncClient) -> None:
    await klaviyo.post("/_sandbox/faults", json={"token_endpoint": "down"})
    response = await refresh(klaviyo, KLAVIYO_TOKEN, "anything")
    assert response.status_code == 503
    assert "x-sandbox-drop-connection" not in response.headers


async def test_bad_admin_input(klaviyo: httpx.AsyncClient) -> None:
    assert (
        await klaviyo.post("/_sandbox/faults", json={"token_endpoint": "flaky"})
    ).status_code == 400
    assert (await klaviyo.post("/_sandbox/config", json={"auto_approve": "yes"})).status_code == 400
    assert (await klaviyo.post("/_sandbox/config", json={"client_secret": "x"})).status_code == 400
    assert (await klaviyo.post("/_sandbox/config", content=b"[")).status_code == 400


async def test_minted_tokens_work_and_revoke_all_kills_them(cc: httpx.AsyncClient) -> None:
    minted = await cc.post("/_sandbox/tokens", json={"scope": "contact_data offline_access"})
    assert minted.status_code == 201
    tokens = minted.json()
    assert tokens["scope"] == "contact_data offline_access"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await cc.get("/v3/contacts", headers=headers)).status_code == 200
    assert (await cc.post("/_sandbox/revoke_all")).json() == {"revoked_grants": 1}
    assert (await cc.get("/v3/contacts", headers=headers)).status_code == 401
    assert (await refresh(cc, CC_TOKEN, tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_config_ttl_and_clock(cc: httpx.AsyncClient) -> None:
    await cc.post("/_sandbox/config", json={"access_token_ttl": 60})
    tokens = (await cc.post("/_sandbox/tokens")).json()
    assert tokens["expires_in"] == 60
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    await cc.post("/_sandbox/clock", json={"advance": 61})
    assert (await cc.get("/v3/contacts", headers=headers)).status_code == 401


async def test_expire_access_tokens(cc: httpx.AsyncClient) -> None:
    tokens = (await cc.post("/_sandbox/tokens")).json()
    await cc.post("/_sandbox/expire_access_tokens")
    assert (
        await cc.get("/v3/contacts", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    ).status_code == 401
    assert (await refresh(cc, CC_TOKEN, tokens["refresh_token"])).status_code == 200


async def test_reset_clears_data_and_optionally_tokens(cc: httpx.AsyncClient) -> None:
    tokens = (await cc.post("/_sandbox/tokens")).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    await cc.post("/v3/contact_lists", json={"name": "A"}, headers=headers)
    await cc.post("/_sandbox/reset")
    assert (await cc.get("/v3/contact_lists", headers=headers)).json() == {"lists": []}
    assert (await cc.get("/_sandbox/stats")).json()["api_calls"] == 1
    await cc.post("/_sandbox/reset", json={"tokens": True})
    assert (await cc.get("/v3/contact_lists", headers=headers)).status_code == 401


async def test_private_keys_admin(klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState) -> None:
    added = await klaviyo.post("/_sandbox/private_keys", json={"key": "pk_extra_1"})
    assert added.status_code == 201
    assert "pk_extra_1" in klaviyo_state.private_keys
    headers = {"Authorization": "Klaviyo-API-Key pk_extra_1", **REVISION}
    assert (await klaviyo.get("/api/accounts", headers=headers)).status_code == 200
    generated = (await klaviyo.post("/_sandbox/private_keys")).json()["key"]
    assert generated.startswith("pk_")
    assert (await klaviyo.post("/_sandbox/private_keys", json={"key": "nope"})).status_code == 400


@pytest.fixture
async def served_cc() -> AsyncIterator[tuple[str, Starlette]]:
    """The Constant Contact sandbox on a real uvicorn server on an ephemeral port."""
    app = create_constant_contact_app(SandboxConfig())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    await task


async def test_down_fault_closes_the_connection(served_cc: tuple[str, Starlette]) -> None:
    origin, app = served_cc
    async with httpx.AsyncClient(base_url=origin) as client:
        await client.post("/_sandbox/faults", json={"token_endpoint": "down"})
        with pytest.raises(httpx.RemoteProtocolError):
            await refresh(client, CC_TOKEN, "anything")
        await client.post("/_sandbox/faults", json={"token_endpoint": "ok"})
        response = await refresh(client, CC_TOKEN, "anything")
        assert response.json()["error"] == "invalid_grant"
    assert app.state.sandbox.stats.token_requests["refresh_token"] == 2


async def test_runner_serves_both() -> None:
    klaviyo_port = free_port()
    cc_port = klaviyo_port + 1  # the registry's order: Klaviyo first, Constant Contact next
    task = asyncio.create_task(serve_sandboxes_async("127.0.0.1", klaviyo_port))
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    k = await client.get(f"http://127.0.0.1:{klaviyo_port}/_sandbox/stats")
                    c = await client.get(f"http://127.0.0.1:{cc_port}/_sandbox/stats")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
            else:
                pytest.fail("sandboxes did not start")
        assert k.json()["config"]["access_token_ttl"] == 3600
        assert c.json()["config"]["access_token_ttl"] == 86400
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
