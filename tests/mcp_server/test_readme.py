"""The README's MCP section runs: its client configurations and its Python examples."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_server.test_tools_http import TOOLS
from tests.support.sandboxes import SandboxedKeygate

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:8080"


def mcp_blocks(language: str) -> list[str]:
    """The code blocks of one language in the README's MCP section, in order."""
    text = README.read_text()
    section = text.split("\n## MCP\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def _ready_tenant(sandboxed: SandboxedKeygate) -> str:
    """A key whose workspace has a Klaviyo connection and at least three profiles to page."""
    tenant = sandboxed.tenant()
    sandboxed.oauth_connection(tenant, "klaviyo")
    for n in range(3):
        body = {"data": {"type": "profile", "attributes": {"email": f"{uuid.uuid4().hex}{n}@x.io"}}}
        assert tenant.http.post("/klaviyo/api/profiles", json=body).status_code == 201
    tenant.close()
    return tenant.key


async def test_the_http_configuration_works(mcp_sandboxed: SandboxedKeygate) -> None:
    # The stdio one is what test_stdio.py starts.
    key = _ready_tenant(mcp_sandboxed)
    entry = json.loads(mcp_blocks("json")[1])["mcpServers"]["keygate"]
    assert entry["type"] == "http"
    assert entry["headers"] == {"Authorization": "Bearer kg_..."}
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
        streamable_http_client(
            entry["url"].replace(DOCUMENTED_URL, mcp_sandboxed.keygate.url), http_client=http
        ) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS


def test_the_python_examples_run(mcp_sandboxed: SandboxedKeygate) -> None:
    key = _ready_tenant(mcp_sandboxed)
    env = {
        **os.environ,
        "KEYGATE_API_KEY": key,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    http_example, stdio_example = mcp_blocks("python")
    outputs = []
    for example in (http_example, stdio_example):
        code = example.replace(DOCUMENTED_URL, mcp_sandboxed.keygate.url)
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.splitlines())
    first, then = outputs[0]
    assert first.startswith("200 [")
    assert first.count("@") == 2
    assert then == "200"
    assert outputs[1] == ["{'klaviyo': {'ACTIVE': 1}}"]
