"""`keygate mcp`: the same tools over stdio, forwarding to a Keygate over HTTP (SDK client)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from keygate.cli.main import app
from tests.mcp_server.conftest import (
    error_text,
    stdio_session,
    structured,
)
from tests.mcp_server.test_tools_http import TOOLS
from tests.support.sandboxes import SandboxedKeygate

PROFILES = {"app": "klaviyo", "method": "GET", "path": "/api/profiles"}


async def test_stdio_serves_the_tools_against_a_remote_keygate(
    mcp_sandboxed: SandboxedKeygate,
) -> None:
    tenant = mcp_sandboxed.tenant()
    oldest = mcp_sandboxed.oauth_connection(tenant, "klaviyo")
    chosen = mcp_sandboxed.oauth_connection(tenant, "klaviyo")
    cc = mcp_sandboxed.oauth_connection(tenant, "constant-contact")
    base = mcp_sandboxed.keygate.url
    async with stdio_session(base, tenant.key, "--connection", chosen) as session:
        tools = (await session.list_tools()).tools
        me = structured(await session.call_tool("whoami", {}))
        by_default = structured(await session.call_tool("call_api", PROFILES))
        named = structured(await session.call_tool("call_api", {**PROFILES, "connection": oldest}))
        other_app = structured(
            await session.call_tool(
                "run_action", {"action": "constant-contact.get_contacts", "params": {"limit": 1}}
            )
        )
        zh = structured(await session.call_tool("get_app", {"app": "klaviyo", "lang": "zh"}))
        made = structured(await session.call_tool("create_connection", {"app": "klaviyo"}))
        gone = structured(
            await session.call_tool(
                "delete_connection", {"connection_id": made["connection"]["connection_id"]}
            )
        )
        missing = await session.call_tool(
            "get_connection", {"connection_id": made["connection"]["connection_id"]}
        )
    assert {tool.name for tool in tools} == TOOLS
    assert all(tool.output_schema is not None for tool in tools)
    assert me["keygate_url"] == base
    assert me["default_connection"] == chosen
    assert me["connections"] == {"klaviyo": {"ACTIVE": 2}, "constant-contact": {"ACTIVE": 1}}
    # --connection picks that connection for its app's calls, unless a call names another.
    assert by_default["status"] == 200
    assert by_default["connection_id"] == chosen
    assert named["connection_id"] == oldest
    assert by_default["next"] is None or by_default["next"]["connection"] == chosen
    assert other_app["status"] == 200
    assert other_app["connection_id"] == cc
    assert zh["skill"] == tenant.http.get("/apps/klaviyo/skill", params={"lang": "zh"}).text
    assert zh["skill"].startswith("---\nname: klaviyo\n")
    assert made["connect_url"].startswith(f"{base}/connect?session_token=")
    assert gone["connection"]["status"] == "DELETED"
    assert "connection_not_found" in error_text(missing)
    tenant.close()


async def test_stdio_with_a_wrong_key_says_so_per_call(
    mcp_sandboxed: SandboxedKeygate, tmp_path: Path
) -> None:
    wrong = "kg_wrong_" + "x" * 30
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with stdio_session(
            mcp_sandboxed.keygate.url, wrong, errlog=errlog, env={"KEYGATE_LOG_LEVEL": "DEBUG"}
        ) as session:
            refused = await session.call_tool("whoami", {})
            call = await session.call_tool("call_api", PROFILES)
    assert "invalid_api_key" in error_text(refused)
    assert "invalid_api_key" in error_text(call)
    assert wrong not in error_text(refused) + error_text(call)
    logged = (tmp_path / "stderr.log").read_text()
    assert "HTTP Request: GET" in logged  # the capture works: calls to Keygate are logged
    assert wrong not in logged


def test_stdio_without_a_key_stops_with_a_message() -> None:
    # It stops before any MCP is spoken, so it runs in-process.
    done = CliRunner().invoke(
        app, ["mcp", "--url", "http://127.0.0.1:9"], env={"KEYGATE_API_KEY": ""}
    )
    assert done.exit_code == 1
    assert "KEYGATE_API_KEY" in done.stderr
    assert done.stdout == ""
