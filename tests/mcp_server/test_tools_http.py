"""The MCP tools over streamable HTTP at `/mcp`, driven by the MCP SDK's own client."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_server.conftest import error_text, http_session, structured
from tests.support.sandboxes import SandboxedKeygate

TOOLS = {
    "whoami",
    "search_apps",
    "get_app",
    "list_connections",
    "get_connection",
    "create_connection",
    "delete_connection",
    "search_actions",
    "get_action",
    "run_action",
    "call_api",
}
READ_ONLY = {
    "whoami",
    "search_apps",
    "get_app",
    "list_connections",
    "get_connection",
    "search_actions",
    "get_action",
}


async def test_tools_are_listed_with_schemas_and_annotations(
    mcp_sandboxed: SandboxedKeygate,
) -> None:
    tenant = mcp_sandboxed.tenant()
    async with http_session(mcp_sandboxed.keygate.url, tenant.key) as session:
        listed = (await session.list_tools()).tools
    by_name = {tool.name: tool for tool in listed}
    assert set(by_name) == TOOLS
    for name, tool in by_name.items():
        assert tool.description, name
        assert tool.input_schema["type"] == "object", name
        assert tool.output_schema is not None, name
        assert tool.output_schema["type"] == "object", name
        hints = tool.annotations
        assert hints is not None, name
        assert hints.read_only_hint is (name in READ_ONLY), name
    call_api = by_name["call_api"]
    assert set(call_api.input_schema["required"]) == {"app", "method", "path"}
    assert set(call_api.input_schema["properties"]) == {
        "app",
        "method",
        "path",
        "query",
        "headers",
        "body",
        "connection",
    }
    assert {"status", "headers", "body", "truncated", "next", "action_needed"} <= set(
        call_api.output_schema["properties"]
    )
    assert by_name["delete_connection"].annotations.destructive_hint is True
    assert by_name["delete_connection"].annotations.idempotent_hint is True
    assert by_name["create_connection"].annotations.destructive_hint is False
    assert by_name["call_api"].annotations.destructive_hint is True


async def test_whoami_and_the_catalog(mcp_sandboxed: SandboxedKeygate) -> None:
    tenant = mcp_sandboxed.tenant()
    mcp_sandboxed.oauth_connection(tenant, "klaviyo")
    base = mcp_sandboxed.keygate.url
    async with http_session(base, tenant.key) as session:
        me = structured(await session.call_tool("whoami", {}))
        found = structured(await session.call_tool("search_apps", {"query": "klav"}))
        app = structured(await session.call_tool("get_app", {"app": "klaviyo"}))
        unknown = await session.call_tool("get_app", {"app": "no-such-app"})
        reserved = await session.call_tool("get_app", {"app": "../connections"})
        nothing = structured(await session.call_tool("search_apps", {"query": "no-such-app-zzz"}))
        no_actions = structured(await session.call_tool("search_actions", {"query": "zzz"}))
        bad_filter = await session.call_tool("search_actions", {"app": "no-such-app"})
    assert me["keygate_url"] == base
    assert me["authenticated"] is True
    assert {"klaviyo", "constant-contact"} <= set(me["apps"])
    assert me["connections"] == {"klaviyo": {"ACTIVE": 1}}
    assert [a["app"] for a in found["apps"]] == ["klaviyo"]
    assert found["apps"][0]["active_connections"] == 1
    assert found["apps"][0]["methods"] == ["OAUTH2", "API_KEY"]
    assert app["pagination"] == {"next": "links.next", "link": "absolute", "items": "data"}
    assert [a["action"] for a in app["actions"]] == [
        "klaviyo.get_profiles",
        "klaviyo.get_profile",
        "klaviyo.create_profile",
    ]
    assert app["skill_url"] == f"{base}/apps/klaviyo/skill?lang=en"
    assert "unknown_app" in error_text(unknown)
    assert "not an app name" in error_text(reserved)
    assert nothing["apps"] == []
    assert no_actions["actions"] == []
    assert "unknown_app" in error_text(bad_filter)
    tenant.close()


async def test_missing_or_wrong_key_is_refused_with_401(mcp_sandboxed: SandboxedKeygate) -> None:
    url = f"{mcp_sandboxed.keygate.url}/mcp"
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer kg_not_a_real_key"}, {"Authorization": "x"}):
        answer = httpx.post(url, json=message, headers={**accept, **headers}, timeout=30)
        assert answer.status_code == 401, answer.text
        assert answer.headers["keygate-error"] == "invalid_api_key"
        assert answer.json()["error"]["code"] == "invalid_api_key"


async def test_host_and_origin_must_name_this_keygate(mcp_sandboxed: SandboxedKeygate) -> None:
    tenant = mcp_sandboxed.tenant()
    url = f"{mcp_sandboxed.keygate.url}/mcp"
    port = mcp_sandboxed.keygate.port
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    base = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {tenant.key}",
    }
    refused: list[dict[str, str]] = [
        {"Host": f"attacker.example:{port}"},
        {"Origin": "http://attacker.example"},
        {"Origin": f"http://127.0.0.1:{port + 1}"},
    ]
    for extra in refused:
        answer = httpx.post(url, json=message, headers={**base, **extra}, timeout=30)
        assert answer.status_code == 400, (extra, answer.text)
        assert answer.headers["keygate-error"] == "invalid_header"
    # The public URL's own origin, and the other loopback name on its port, are this Keygate.
    for extra in ({"Origin": mcp_sandboxed.keygate.url}, {"Host": f"localhost:{port}"}):
        answer = httpx.post(url, json=message, headers={**base, **extra}, timeout=30)
        assert answer.status_code == 200, (extra, answer.text)
        tools: list[dict[str, Any]] = answer.json()["result"]["tools"]
        assert len(tools) == len(TOOLS)
    tenant.close()


def test_only_post_is_served_as_there_are_no_sessions(mcp_sandboxed: SandboxedKeygate) -> None:
    # Stateless: no stream a GET could open, no session a DELETE could end. A GET must not be
    # left hanging on a stream that can never carry anything.
    tenant = mcp_sandboxed.tenant()
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {tenant.key}",
    }
    for method in ("GET", "DELETE", "PUT"):
        answer = httpx.request(
            method, f"{mcp_sandboxed.keygate.url}/mcp", headers=headers, timeout=10
        )
        assert answer.status_code == 405, (method, answer.text)
        assert answer.headers["allow"] == "POST"
        assert answer.headers["keygate-error"] == "method_not_allowed"
    tenant.close()


async def test_a_client_of_the_stateless_protocol_revision_is_served(
    mcp_sandboxed: SandboxedKeygate,
) -> None:
    # mcp.Client in "auto" mode discovers the server and speaks the newest revision (no
    # initialize handshake at all): the endpoint's checks and the tools work the same.
    tenant = mcp_sandboxed.tenant()
    connection = mcp_sandboxed.oauth_connection(tenant, "klaviyo")
    url = f"{mcp_sandboxed.keygate.url}/mcp"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {tenant.key}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode="auto") as client,
    ):
        tools = (await client.list_tools()).tools
        me = await client.call_tool("whoami", {})
        call = await client.call_tool(
            "call_api", {"app": "klaviyo", "method": "GET", "path": "/api/profiles"}
        )
    assert {tool.name for tool in tools} == TOOLS
    assert me.structured_content is not None
    assert me.structured_content["connections"] == {"klaviyo": {"ACTIVE": 1}}
    assert call.structured_content is not None
    assert call.structured_content["connection_id"] == connection
    tenant.close()


async def test_get_app_carries_the_apps_skill_in_both_languages(
    mcp_sandboxed: SandboxedKeygate,
) -> None:
    tenant = mcp_sandboxed.tenant()
    base = mcp_sandboxed.keygate.url
    async with http_session(base, tenant.key) as session:
        english = structured(await session.call_tool("get_app", {"app": "klaviyo"}))
        chinese = structured(await session.call_tool("get_app", {"app": "klaviyo", "lang": "zh"}))
    served = {
        lang: tenant.http.get("/apps/klaviyo/skill", params={"lang": lang}).text
        for lang in ("en", "zh")
    }
    for lang, app in (("en", english), ("zh", chinese)):
        skill = app["skill"]
        assert isinstance(skill, str), (lang, app)
        assert skill == served[lang]
        assert skill.startswith("---\nname: klaviyo\n"), skill[:80]
        assert app["skill_url"] == f"{base}/apps/klaviyo/skill?lang={lang}"
        # The endpoint table, from this Keygate's catalog (the tests' endpoints).
        assert "| GET | `/klaviyo/api/profiles/{id}` |" in skill, skill
        assert base in skill
    assert "Get one profile." in english["skill"]
    assert "获取单个用户档案。" in chinese["skill"]
    assert "Get one profile." not in chinese["skill"]
    tenant.close()
