"""`/mcp` as `keygate serve` serves it: granian, two workers, each answering any request."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.cli.conftest import KEYGATE, Cli
from tests.support.processes import stop_process, wait_until_serving
from tests.support.servers import ServerThread, free_port
from tests.support.upstream import RecordingUpstream


@pytest.fixture(scope="module")
def serving(
    installed: tuple[Cli, str],
    upstream: tuple[RecordingUpstream, ServerThread],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """(url, key) of `keygate serve --workers 2`, Klaviyo pointed at the recording upstream."""
    cli, key = installed
    port = free_port()
    cli.env["KEYGATE_APPS__KLAVIYO__BASE_URL"] = upstream[1].url
    cli.json("connections", "import", "klaviyo", "--access-token", "mcp-serve-token")
    log = tmp_path_factory.mktemp("mcp-serve") / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(KEYGATE), "serve", "--port", str(port), "--workers", "2"],
            env=cli.env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, Path(log).read_text)
        yield url, key
    finally:
        stop_process(process)


async def test_mcp_over_granian_workers(
    serving: tuple[str, str], upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    url, key = serving
    upstream[0].clear()
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        # Stateless: however the requests spread over the workers, each is answered whole.
        answers = [
            await session.call_tool(
                "call_api", {"app": "klaviyo", "method": "GET", "path": f"/api/echo/{n}"}
            )
            for n in range(6)
        ]
    for n, answer in enumerate(answers):
        assert not answer.is_error, answer.content
        assert answer.structured_content is not None
        assert answer.structured_content["status"] == 200
        assert answer.structured_content["body"]["raw_path"] == f"/api/echo/{n}"
    assert [seen.header("authorization") for seen in upstream[0].seen] == [
        "Bearer mcp-serve-token"
    ] * 6
