"""Connections, `call_api` and `run_action` over `/mcp`, against the provider sandboxes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.mcp_server.conftest import error_text, http_session, structured
from tests.support.sandboxes import SandboxedKeygate


async def test_a_connection_from_creation_to_deletion(mcp_sandboxed: SandboxedKeygate) -> None:
    tenant = mcp_sandboxed.tenant()
    base = mcp_sandboxed.keygate.url
    async with http_session(base, tenant.key) as session:
        made = structured(await session.call_tool("create_connection", {"app": "klaviyo"}))
        connection_id = made["connection"]["connection_id"]
        shown = structured(
            await session.call_tool("get_connection", {"connection_id": connection_id})
        )
        listed = structured(await session.call_tool("list_connections", {"app": "klaviyo"}))
        pending = structured(await session.call_tool("list_connections", {"status": "ACTIVE"}))
        by_key = structured(
            await session.call_tool("create_connection", {"app": "klaviyo", "method": "API_KEY"})
        )
        deleted = structured(
            await session.call_tool("delete_connection", {"connection_id": connection_id})
        )
        gone = await session.call_tool("get_connection", {"connection_id": connection_id})
        again = await session.call_tool("delete_connection", {"connection_id": connection_id})
        not_an_id = await session.call_tool("get_connection", {"connection_id": "../apps"})
        bad_app = await session.call_tool("create_connection", {"app": "no-such-app"})
        bad_cursor = await session.call_tool("list_connections", {"cursor": "not-a-cursor"})
        bad_status = await session.call_tool("list_connections", {"status": "DELETED"})
        bad_method = await session.call_tool(
            "create_connection", {"app": "constant-contact", "method": "API_KEY"}
        )
    assert made["connection"]["status"] == "PENDING"
    assert made["connect_url"].startswith(f"{base}/connect?session_token=")
    assert made["connect_url"] == made["connection"]["url"]
    assert made["connect_url"] in made["instruction"]
    assert "exactly as it is" in made["instruction"]
    assert shown["connection"]["status"] == "PENDING"
    assert [c["connection_id"] for c in listed["connections"]] == [connection_id]
    assert pending["connections"] == []
    assert by_key["connection"]["method"] == "API_KEY"
    assert deleted["connection"]["status"] == "DELETED"
    assert "connection_not_found" in error_text(gone)
    assert "connection_not_found" in error_text(again)
    assert "not_found" in error_text(not_an_id)
    assert "unknown_app" in error_text(bad_app)
    assert "invalid_cursor" in error_text(bad_cursor)
    assert "status" in error_text(bad_status)  # refused by the tool's own input schema
    assert "unsupported_method" in error_text(bad_method)
    # The link a tool handed out is the real one: it opens Keygate's connect page.
    page = httpx.get(by_key["connect_url"], timeout=30)
    assert page.status_code == 200
    assert "Klaviyo" in page.text
    tenant.close()


def _profile(email: str) -> dict[str, Any]:
    return {"data": {"type": "profile", "attributes": {"email": email}}}


async def test_call_api_follows_klaviyo_pages_with_next(mcp_sandboxed: SandboxedKeygate) -> None:
    tenant = mcp_sandboxed.tenant()
    connection_id = mcp_sandboxed.oauth_connection(tenant, "klaviyo")
    marker = uuid.uuid4().hex[:8]
    emails = {f"{marker}-{n}@example.com" for n in range(3)}
    async with http_session(mcp_sandboxed.keygate.url, tenant.key) as session:
        for email in sorted(emails):
            made = structured(
                await session.call_tool(
                    "call_api",
                    {
                        "app": "klaviyo",
                        "method": "POST",
                        "path": "/api/profiles",
                        "body": _profile(email),
                    },
                )
            )
            assert made["status"] == 201, made
        first = structured(
            await session.call_tool(
                "call_api",
                {
                    "app": "klaviyo",
                    "method": "GET",
                    "path": "/api/profiles",
                    "query": {"page[size]": 2},
                },
            )
        )
        pages = [first]
        while pages[-1]["next"] is not None and len(pages) < 50:
            pages.append(structured(await session.call_tool("call_api", pages[-1]["next"])))
    assert first["status"] == 200
    assert first["ok"] is True
    assert first["connection_id"] == connection_id
    assert first["headers"]["keygate-connection"] == connection_id
    assert first["headers"]["content-type"].startswith("application/vnd.api+json")
    assert first["headers"]["x-request-id"]
    assert first["truncated"] is False
    assert first["next"]["app"] == "klaviyo"
    assert first["next"]["method"] == "GET"
    assert first["next"]["path"].startswith("/api/profiles")
    assert "page%5Bcursor%5D=" in first["next"]["path"] or "page[cursor]=" in first["next"]["path"]
    assert first["next"]["connection"] == connection_id
    assert len(pages) >= 2
    assert pages[-1]["next"] is None
    seen = [p["attributes"]["email"] for page in pages for p in page["body"]["data"]]
    assert emails <= set(seen)
    assert len(seen) == len(set(seen))  # each profile on exactly one page
    tenant.close()


async def test_run_action_types_and_encodes_its_parameters(
    mcp_sandboxed: SandboxedKeygate,
) -> None:
    tenant = mcp_sandboxed.tenant()
    mcp_sandboxed.oauth_connection(tenant, "klaviyo")
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    recorder = mcp_sandboxed.keygate.recorder
    async with http_session(mcp_sandboxed.keygate.url, tenant.key) as session:
        found = structured(
            await session.call_tool("search_actions", {"query": "profile", "app": "klaviyo"})
        )
        chinese = structured(
            await session.call_tool(
                "search_actions", {"query": "联系人", "app": "constant-contact"}
            )
        )
        described = structured(
            await session.call_tool("get_action", {"action": "klaviyo.get_profile"})
        )
        made = structured(
            await session.call_tool(
                "run_action", {"action": "klaviyo.create_profile", "body": _profile(email)}
            )
        )
        profile_id = made["body"]["data"]["id"]
        got = structured(
            await session.call_tool(
                "run_action", {"action": "klaviyo.get_profile", "params": {"id": profile_id}}
            )
        )
        listed = structured(
            await session.call_tool(
                "run_action",
                {"action": "klaviyo.get_profiles", "params": {"page[size]": "1"}},
            )
        )
        recorder.urls.clear()
        sneaky = structured(
            await session.call_tool(
                "run_action",
                {"action": "klaviyo.get_profile", "params": {"id": "../accounts"}},
            )
        )
        sneaky_urls = list(recorder.urls)
        missing = await session.call_tool("run_action", {"action": "klaviyo.get_profile"})
        unknown = await session.call_tool(
            "run_action", {"action": "klaviyo.get_profile", "params": {"id": "x", "idd": "y"}}
        )
        wrong_type = await session.call_tool(
            "run_action", {"action": "klaviyo.get_profiles", "params": {"page[size]": "ten"}}
        )
        no_action = await session.call_tool("run_action", {"action": "klaviyo.nothing"})
        no_dot = await session.call_tool("get_action", {"action": "get_profile"})
    assert {a["action"] for a in found["actions"]} == {
        "klaviyo.get_profiles",
        "klaviyo.get_profile",
        "klaviyo.create_profile",
    }
    assert [a["action"] for a in chinese["actions"]] == ["constant-contact.get_contacts"]
    schema = described["params_schema"]
    assert schema["required"] == ["id"]
    assert schema["properties"]["id"]["type"] == "string"
    assert described["method"] == "GET"
    assert described["path"] == "/api/profiles/{id}"
    assert made["status"] == 201
    assert got["status"] == 200
    assert got["body"]["data"]["attributes"]["email"] == email
    assert listed["status"] == 200
    assert len(listed["body"]["data"]) == 1
    assert listed["next"] is not None
    # A path parameter is one segment, whatever it holds: encoded whole, which the gateway
    # refuses (an encoded slash) before anything reaches the upstream.
    assert sneaky["status"] == 400
    assert sneaky["error"]["code"] == "invalid_path"
    assert sneaky_urls == []
    assert "Missing required parameter(s): id" in error_text(missing)
    assert "Unknown parameter(s) idd" in error_text(unknown)
    assert "is an integer" in error_text(wrong_type)
    assert "has no action 'nothing'" in error_text(no_action)
    assert "app.action" in error_text(no_dot)
    tenant.close()


async def test_constant_contact_relative_next_links(mcp_sandboxed: SandboxedKeygate) -> None:
    tenant = mcp_sandboxed.tenant()
    mcp_sandboxed.oauth_connection(tenant, "constant-contact")
    marker = uuid.uuid4().hex[:8]
    async with http_session(mcp_sandboxed.keygate.url, tenant.key) as session:
        for n in range(2):
            body = {
                "email_address": {"address": f"{marker}-{n}@example.com"},
                "create_source": "Account",
            }
            made = structured(
                await session.call_tool(
                    "call_api",
                    {
                        "app": "constant-contact",
                        "method": "POST",
                        "path": "/v3/contacts",
                        "body": body,
                    },
                )
            )
            assert made["status"] == 201, made
        first = structured(
            await session.call_tool(
                "run_action", {"action": "constant-contact.get_contacts", "params": {"limit": 1}}
            )
        )
        second = structured(await session.call_tool("call_api", first["next"]))
    assert first["status"] == 200
    assert first["next"]["path"].startswith("/v3/contacts?")
    assert second["status"] == 200
    assert second["body"]["contacts"] != first["body"]["contacts"]
    tenant.close()
