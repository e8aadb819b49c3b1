"""Keygates for the MCP tests, and MCP client sessions over both transports (the SDK's client).

The seed apps' catalog files are used with a few endpoints of the tests' own (the real lists
are the catalog's business and may change), so the actions the tests run are fixed here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx2
import pytest
import yaml
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from keygate.catalog.loader import BUILTIN_DIR
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, upstream_overrides
from tests.support.sandboxes import SandboxedKeygate
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

README_URL = "http://127.0.0.1:8080"
"""The Keygate URL the README's examples use."""

TEST_ENDPOINTS: dict[str, list[dict[str, Any]]] = {
    "klaviyo": [
        {
            "name": "get_profiles",
            "method": "GET",
            "path": "/api/profiles",
            "summary": {"en": "List profiles.", "zh": "列出用户档案。"},
            "params": [
                {"name": "page[size]", "in": "query", "type": "integer", "example": 20},
                {"name": "page[cursor]", "in": "query"},
            ],
            "paginated": True,
        },
        {
            "name": "get_profile",
            "method": "GET",
            "path": "/api/profiles/{id}",
            "summary": {"en": "Get one profile.", "zh": "获取单个用户档案。"},
            "params": [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "description": {"en": "The profile id.", "zh": "档案 ID。"},
                }
            ],
        },
        {
            "name": "create_profile",
            "method": "POST",
            "path": "/api/profiles",
            "summary": {"en": "Create a profile.", "zh": "创建用户档案。"},
            "body": {"data": {"type": "profile", "attributes": {"email": "a@example.com"}}},
        },
    ],
    "constant-contact": [
        {
            "name": "get_contacts",
            "method": "GET",
            "path": "/v3/contacts",
            "summary": {"en": "List contacts.", "zh": "列出联系人。"},
            "params": [{"name": "limit", "in": "query", "type": "integer", "example": 50}],
            "paginated": True,
        }
    ],
}


def catalog_with_test_endpoints(directory: Path) -> Path:
    """The seed apps' catalog files, each with the tests' endpoints in place of its own."""
    directory.mkdir(parents=True, exist_ok=True)
    for app, endpoints in TEST_ENDPOINTS.items():
        data = yaml.safe_load((BUILTIN_DIR / f"{app}.yaml").read_text())
        data["endpoints"] = endpoints
        (directory / f"{app}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return directory


@pytest.fixture(scope="package")
def mcp_sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxedKeygate]:
    """Keygate wired to the sandboxes, its seed apps carrying the tests' endpoints."""
    directory = tmp_path_factory.mktemp("keygate-mcp")
    made = SandboxedKeygate(
        directory,
        fresh_database(directory, "keygate_mcp"),
        catalog_dir=catalog_with_test_endpoints(directory / "catalog"),
    )
    yield made
    made.stop()


@pytest.fixture(scope="package")
def mcp_recording(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[KeygateHarness, RecordingUpstream]]:
    """Keygate in front of the recording upstream, with the smallest MCP body limit."""
    upstream = RecordingUpstream()
    server = ServerThread(upstream, lifespan="off").start()
    directory = tmp_path_factory.mktemp("keygate-mcp-recording")
    harness = KeygateHarness(
        directory,
        fresh_database(directory, "keygate_mcp_recording"),
        apps=upstream_overrides(server.url),
        mcp_max_body=1024,
    )
    yield harness, upstream
    harness.stop()
    server.stop()


@asynccontextmanager
async def http_session(base_url: str, key: str | None) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with Keygate's `/mcp`, sending `key` as a Bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def keygate_command() -> str:
    """The installed `keygate` console script of this interpreter's environment."""
    return str(Path(sys.executable).parent / "keygate")


def readme_stdio_entry() -> dict[str, Any]:
    """The stdio entry of the README's MCP client configuration."""
    from tests.mcp_server.test_readme import mcp_blocks

    entry: dict[str, Any] = json.loads(mcp_blocks("json")[0])["mcpServers"]["keygate"]
    return entry


@asynccontextmanager
async def stdio_session(
    base_url: str,
    key: str,
    *extra: str,
    errlog: TextIO = sys.stderr,
    env: dict[str, str] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with `keygate mcp`, started as the README's configuration
    says (its URL replaced by `base_url`, its key by `key`, `extra` arguments added); its
    stderr goes to `errlog`, `env` joins its environment."""
    entry = readme_stdio_entry()
    assert entry["command"] == "keygate"
    assert set(entry["env"]) == {"KEYGATE_API_KEY"}
    params = StdioServerParameters(
        command=keygate_command(),
        args=[arg.replace(README_URL, base_url) for arg in entry["args"]] + list(extra),
        env={"KEYGATE_API_KEY": key, **(env or {})},
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write, read_timeout_seconds=60) as session,
    ):
        await session.initialize()
        yield session


def structured(result: CallToolResult) -> dict[str, Any]:
    """A successful tool result's structured content."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    """A failed tool result's message."""
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)
