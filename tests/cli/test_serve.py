"""`keygate serve` (granian, two workers) and `keygate call` through it, run by an operator.

`serve` runs as a subprocess (it serves until stopped); `call` runs in-process but for one
subprocess smoke test.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import orjson
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.cli.conftest import KEYGATE, Cli, assert_one_line_error
from tests.support.processes import stop_process, wait_until_serving
from tests.support.servers import ServerThread, free_port
from tests.support.upstream import RecordingUpstream

ACCESS = "cc-access-serve-5e8f1a"
REFRESH = "cc-refresh-serve-0d77b2"


@dataclass
class Served:
    """A `keygate serve` subprocess, the installation behind it and what it logged."""

    cli: Cli
    key: str
    url: str
    connection_id: str
    process: subprocess.Popen[bytes]
    stderr_path: Path
    stdout_path: Path

    def call(self, *args: str) -> list[str]:
        """The argv of a `keygate call` against this server."""
        return ["call", *args]

    def stderr(self) -> str:
        """What the server wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        """What the server wrote to stdout so far."""
        return self.stdout_path.read_text(errors="replace")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def served(
    installed: tuple[Cli, str],
    upstream: tuple[RecordingUpstream, ServerThread],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    """`keygate serve --port P --workers 2`, both seed apps pointed at the recording upstream.

    No KEYGATE_PUBLIC_URL: the public URL follows the port served. The CLI commands of the
    tests get KEYGATE_PORT=P, the documented way to tell them where the server is.
    """
    cli, key = installed
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli.env.update(
        {
            "KEYGATE_APPS__KLAVIYO__BASE_URL": upstream[1].url,
            "KEYGATE_APPS__CONSTANT_CONTACT__BASE_URL": upstream[1].url,
            "KEYGATE_APPS__CONSTANT_CONTACT__CLIENT_ID": "cc-client-serve",
            "KEYGATE_API_KEY": key,
        }
    )
    connection_id = cli.json(
        "connections",
        "import",
        "constant-contact",
        "--access-token",
        ACCESS,
        "--refresh-token",
        REFRESH,
    )["connection"]["connection_id"]
    logs = tmp_path_factory.mktemp("serve")
    stderr_path, stdout_path = logs / "stderr.log", logs / "stdout.log"
    with stderr_path.open("wb") as stderr, stdout_path.open("wb") as stdout:
        process = subprocess.Popen(
            [str(KEYGATE), "serve", "--port", str(port), "--workers", "2"],
            env=cli.env,
            stdout=stdout,
            stderr=stderr,
        )
    cli.env["KEYGATE_PORT"] = str(port)
    try:
        wait_until_serving(url, process, stderr_path.read_text)
        yield Served(cli, key, url, connection_id, process, stderr_path, stdout_path)
    finally:
        stop_process(process)


def test_serve_runs_two_workers_and_call_goes_through_the_gateway(
    served: Served, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    recording = upstream[0]
    recording.clear()
    assert len(_children(served.process.pid)) >= 2  # granian's two worker processes
    cli = served.cli
    # One subprocess smoke test of the console script; the rest run in-process.
    get = cli.spawn("call", "constant-contact", "GET", "/v3/contacts?limit=5&status=all")
    post, unknown, no_key = cli.parallel(
        (
            "call",
            "constant-contact",
            "POST",
            "/v3/contacts",
            "--data",
            '{"email":"a@b.c"}',
            "--header",
            "X-Custom: kept",
            "--connection",
            served.connection_id,
        ),
        (
            "call",
            "constant-contact",
            "GET",
            "/v3/contacts",
            "--connection",
            "00000000-0000-4000-8000-000000000000",
        ),
        ("call", "klaviyo", "GET", "/api/profiles"),
    )
    assert get.returncode == 0, get.stderr
    echo = orjson.loads(get.stdout)
    assert echo["method"] == "GET"
    assert echo["raw_path"] == "/v3/contacts"
    assert echo["query"] == "limit=5&status=all"

    assert post.returncode == 0, post.stderr
    sent = orjson.loads(post.stdout)
    assert sent["method"] == "POST"
    assert sent["body_bytes"] == len('{"email":"a@b.c"}')
    seen = {s.method: s for s in recording.seen}
    assert seen["POST"].header("x-custom") == "kept"
    assert seen["POST"].header("content-type") == "application/json"
    for request in recording.seen:
        # The imported token is injected; the caller's Keygate key never leaves Keygate.
        assert request.header_values("authorization") == [f"Bearer {ACCESS}"]
        assert all(served.key not in value for _, value in request.headers)

    # Keygate's own errors are printed as the contract's JSON, with a non-zero exit.
    assert unknown.returncode == 1
    assert orjson.loads(unknown.stdout)["error"]["code"] == "connection_not_found"
    assert no_key.returncode == 1
    assert orjson.loads(no_key.stdout)["error"]["code"] == "no_active_connection"
    assert len(recording.seen) == 2


def test_call_errors_are_one_line(served: Served) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    unreachable, bad_header = served.cli.parallel(
        ("call", "klaviyo", "GET", "/api/profiles", "--url", nowhere),
        ("call", "klaviyo", "GET", "/api/profiles", "--header", "no colon"),
    )
    assert f"could not reach Keygate at {nowhere}" in assert_one_line_error(unreachable)
    assert "--header" in assert_one_line_error(bad_header)
    # Without --url the CLI looks where the server listens, and says how to point it elsewhere.
    port = str(free_port())
    elsewhere = served.cli.run(
        "call", "klaviyo", "GET", "/api/profiles", env={"KEYGATE_PORT": port}
    )
    line = assert_one_line_error(elsewhere)
    assert f"could not reach Keygate at http://127.0.0.1:{port}" in line
    assert "KEYGATE_PORT" in line
    assert "--url" in line
    missing = served.cli.run("call", "klaviyo", "GET", "/api/profiles", env={"KEYGATE_API_KEY": ""})
    assert "KEYGATE_API_KEY" in assert_one_line_error(missing)


def test_serve_log_never_holds_a_secret(served: Served) -> None:
    """The serving processes' stderr (access log included) names no token and no API key."""
    served.cli.ok("call", "constant-contact", "GET", "/v3/account/summary")
    deadline = time.monotonic() + 30
    while "/v3/account/summary" not in served.stderr() and time.monotonic() < deadline:
        time.sleep(0.1)  # the access log is written by the worker, a moment later
    log = served.stderr()
    assert "/v3/account/summary" in log  # the capture works: the access log line is there
    for secret in (ACCESS, REFRESH, served.key):
        assert secret not in log


def test_the_public_url_follows_the_port_served(served: Served) -> None:
    """`serve --port P` without KEYGATE_PUBLIC_URL: connect links and redirect_uri say :P."""
    auth = {"Authorization": f"Bearer {served.key}"}
    created = httpx.post(
        f"{served.url}/connections", json={"app": "constant-contact"}, headers=auth, timeout=30
    )
    assert created.status_code == 201, created.text
    link = created.json()["connection"]["url"]
    assert link.startswith(f"{served.url}/connect?session_token=")
    token = httpx.URL(link).params["session_token"]
    started = httpx.post(f"{served.url}/connect", data={"session_token": token}, timeout=30)
    assert started.status_code == 303, started.text
    redirect_uri = httpx.URL(started.headers["location"]).params["redirect_uri"]
    assert redirect_uri == f"{served.url}/oauth/callback"
    # The CLI, told the port the documented way (KEYGATE_PORT), prints links that agree.
    printed = served.cli.json("connections", "create", "klaviyo")["connection"]["url"]
    assert printed.startswith(f"{served.url}/connect?session_token=")
    # Nothing to report at start-up: no KEYGATE_PUBLIC_URL differs from the address served.
    assert "KEYGATE_PUBLIC_URL" not in served.stdout()


async def test_mcp_is_served_by_any_worker(
    served: Served, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    """`/mcp` under granian's two workers: stateless, so each request is answered whole."""
    upstream[0].clear()
    auth = {"Authorization": f"Bearer {served.key}"}
    async with (
        httpx2.AsyncClient(headers=auth, timeout=60) as http,
        streamable_http_client(f"{served.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        answers = [
            await session.call_tool(
                "call_api", {"app": "constant-contact", "method": "GET", "path": f"/v3/echo/{n}"}
            )
            for n in range(6)
        ]
    for n, answer in enumerate(answers):
        assert not answer.is_error, answer.content
        assert answer.structured_content is not None
        assert answer.structured_content["status"] == 200
        assert answer.structured_content["body"]["raw_path"] == f"/v3/echo/{n}"
        assert answer.structured_content["connection_id"] == served.connection_id
    assert [s.header("authorization") for s in upstream[0].seen] == [f"Bearer {ACCESS}"] * 6


def test_serve_says_when_the_public_url_differs(installed: tuple[Cli, str]) -> None:
    """KEYGATE_PUBLIC_URL wins over the address served, and start-up says so in one line."""
    cli, _ = installed
    port = free_port()
    env = {**cli.env, "KEYGATE_PUBLIC_URL": "https://keygate.example.com"}
    process = subprocess.Popen(
        [str(KEYGATE), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # The line comes before granian starts; if it never comes, stop the server so EOF ends it.
    stopper = threading.Timer(60, process.terminate)
    stopper.start()
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
    finally:
        stopper.cancel()
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()
    assert first.strip() == (
        f"Serving on http://127.0.0.1:{port}; connect links and the OAuth redirect_uri use "
        "KEYGATE_PUBLIC_URL=https://keygate.example.com."
    )


def test_serve_refuses_without_a_key_or_with_a_bad_catalog(
    make_cli: Callable[..., Cli], installed: tuple[Cli, str], tmp_path: Path
) -> None:
    fresh = make_cli()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    bad = catalog / "klaviyo.yaml"
    bad.write_text(
        "name: klaviyo\ndisplay_name: Klaviyo\ndocs_url: https://example.com\n"
        "base_url: not a url\nmethods:\n  - type: API_KEY\n    fields: []\n"
        "    inject: {header: Authorization, template: 'x {api_key}'}\n"
    )
    cli, _ = installed
    port = str(free_port())
    # Both refuse before serving, so they run in-process.
    no_key = assert_one_line_error(fresh.run("serve", "--port", port))
    bad_catalog = assert_one_line_error(
        cli.run("serve", "--port", port, env={"KEYGATE_CATALOG_DIR": str(catalog)})
    )
    assert "No encryption key" in no_key
    assert "KEYGATE_ENCRYPTION_KEY" in no_key
    assert str(bad) in bad_catalog
    assert "base_url" in bad_catalog
    assert not os.path.exists(fresh.data_dir / "encryption.key")
