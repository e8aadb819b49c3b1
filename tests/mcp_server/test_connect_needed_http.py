"""Without a usable connection a call's result carries a connect link; keys stay in their lane."""

from __future__ import annotations

import httpx

from tests.mcp_server.conftest import error_text, http_session, structured
from tests.support.sandboxes import SandboxedKeygate

PROFILES = {"app": "klaviyo", "method": "GET", "path": "/api/profiles"}


async def test_no_active_connection_gives_a_fresh_connect_link(
    mcp_sandboxed: SandboxedKeygate,
) -> None:
    tenant = mcp_sandboxed.tenant()
    base = mcp_sandboxed.keygate.url
    async with http_session(base, tenant.key) as session:
        first = structured(await session.call_tool("call_api", PROFILES))
        second = structured(
            await session.call_tool("run_action", {"action": "klaviyo.get_profiles"})
        )
        listed = structured(await session.call_tool("list_connections", {"app": "klaviyo"}))
    assert first["status"] == 400
    assert first["ok"] is False
    assert first["error"]["code"] == "no_active_connection"
    needed = first["action_needed"]
    assert needed["app"] == "klaviyo"
    assert needed["connect_url"].startswith(f"{base}/connect?session_token=")
    assert needed["connect_url"] in needed["instruction"]
    assert needed["connection_id"] in needed["instruction"]
    # One PENDING connection serves both calls (each with a link of its own): none pile up.
    assert second["action_needed"]["connection_id"] == needed["connection_id"]
    assert second["action_needed"]["connect_url"] != needed["connect_url"]
    assert [c["connection_id"] for c in listed["connections"]] == [needed["connection_id"]]
    assert listed["connections"][0]["status"] == "PENDING"
    # The link works: it opens the connect page of that connection.
    assert httpx.get(second["action_needed"]["connect_url"], timeout=30).status_code == 200
    tenant.close()


async def test_a_chosen_pending_connection_gets_its_link(mcp_sandboxed: SandboxedKeygate) -> None:
    tenant = mcp_sandboxed.tenant()
    async with http_session(mcp_sandboxed.keygate.url, tenant.key) as session:
        made = structured(await session.call_tool("create_connection", {"app": "klaviyo"}))
        chosen = made["connection"]["connection_id"]
        answer = structured(await session.call_tool("call_api", {**PROFILES, "connection": chosen}))
    assert answer["error"]["code"] == "connection_not_active"
    assert answer["action_needed"]["connection_id"] == chosen
    assert answer["action_needed"]["connect_url"].startswith(
        f"{mcp_sandboxed.keygate.url}/connect?session_token="
    )
    tenant.close()


async def test_reauthorization_required_carries_the_reconnect_url(
    mcp_sandboxed: SandboxedKeygate,
) -> None:
    tenant = mcp_sandboxed.tenant()
    sandbox = mcp_sandboxed.cc
    connection_id, tokens = mcp_sandboxed.minted_connection(
        tenant, "constant-contact", expires_in=-10
    )
    # Someone else spends the rotating refresh token first: Keygate's refresh fails for good.
    spent = httpx.post(
        f"{sandbox.url}/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=30,
    )
    assert spent.status_code == 200
    async with http_session(mcp_sandboxed.keygate.url, tenant.key) as session:
        answer = structured(
            await session.call_tool(
                "call_api",
                {
                    "app": "constant-contact",
                    "method": "GET",
                    "path": "/v3/contacts",
                    "connection": connection_id,
                },
            )
        )
    assert answer["status"] == 424
    assert answer["error"]["code"] == "reauthorization_required"
    needed = answer["action_needed"]
    assert needed["connection_id"] == connection_id
    assert needed["connect_url"].startswith(f"{mcp_sandboxed.keygate.url}/connect?session_token=")
    assert needed["connect_url"] in needed["instruction"]
    tenant.close()


async def test_one_workspace_never_sees_anothers(mcp_sandboxed: SandboxedKeygate) -> None:
    owner, other = mcp_sandboxed.tenant(), mcp_sandboxed.tenant()
    owned = mcp_sandboxed.oauth_connection(owner, "klaviyo")
    base = mcp_sandboxed.keygate.url
    async with http_session(base, other.key) as session:
        me = structured(await session.call_tool("whoami", {}))
        listed = structured(await session.call_tool("list_connections", {}))
        shown = await session.call_tool("get_connection", {"connection_id": owned})
        deleted = await session.call_tool("delete_connection", {"connection_id": owned})
        used = structured(await session.call_tool("call_api", {**PROFILES, "connection": owned}))
        apps = structured(await session.call_tool("search_apps", {"query": "klaviyo"}))
    assert me["connections"] == {}
    assert listed["connections"] == []
    assert "connection_not_found" in error_text(shown)
    assert "connection_not_found" in error_text(deleted)
    assert used["status"] == 404
    assert used["error"]["code"] == "connection_not_found"
    assert apps["apps"][0]["active_connections"] == 0
    # The owner still has it, untouched.
    async with http_session(base, owner.key) as session:
        mine = structured(await session.call_tool("get_connection", {"connection_id": owned}))
        works = structured(await session.call_tool("call_api", PROFILES))
    assert mine["connection"]["status"] == "ACTIVE"
    assert works["status"] == 200
    assert works["connection_id"] == owned
    owner.close()
    other.close()
