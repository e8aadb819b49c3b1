"""`keygate serve` (granian, two workers) and `keygate call` through it, run by an operator."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.cli.conftest import KEYGATE, Cli, assert_one_line_error
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

    def call(self, *args: str) -> list[str]:
        """The argv of a `keygate call` against this server."""
        return ["call", *args]

    def stderr(self) -> str:
        """What the server wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")


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
    """`keygate serve --workers 2` with both seed apps pointed at the recording upstream."""
    cli, key = installed
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cli.env.update(
        {
            "KEYGATE_APPS__KLAVIYO__BASE_URL": upstream[1].url,
            "KEYGATE_APPS__CONSTANT_CONTACT__BASE_URL": upstream[1].url,
            "KEYGATE_PUBLIC_URL": url,
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
    stderr_path = tmp_path_factory.mktemp("serve") / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(KEYGATE), "serve", "--port", str(port), "--workers", "2"],
            env=cli.env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr_path.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "keygate serve did not answer /healthz in 60 s"
            time.sleep(0.2)
        yield Served(cli, key, url, connection_id, process, stderr_path)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_serve_runs_two_workers_and_call_goes_through_the_gateway(
    served: Served, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    recording = upstream[0]
    recording.clear()
    assert len(_children(served.process.pid)) >= 2  # granian's two worker processes
    cli = served.cli
    get, post, unknown, no_key = cli.parallel(
        ("call", "constant-contact", "GET", "/v3/contacts?limit=5&status=all"),
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
    unreachable, bad_header = served.cli.parallel(
        ("call", "klaviyo", "GET", "/api/profiles", "--url", f"http://127.0.0.1:{free_port()}"),
        ("call", "klaviyo", "GET", "/api/profiles", "--header", "no colon"),
    )
    assert "could not reach Keygate" in assert_one_line_error(unreachable)
    assert "--header" in assert_one_line_error(bad_header)
    missing = served.cli.run("call", "klaviyo", "GET", "/api/profiles", env={"KEYGATE_API_KEY": ""})
    assert "KEYGATE_API_KEY" in assert_one_line_error(missing)


def test_serve_log_never_holds_a_secret(served: Served) -> None:
    """The serving processes' stderr (access log included) names no token and no API key."""
    served.cli.ok("call", "constant-contact", "GET", "/v3/account/summary")
    time.sleep(0.3)
    log = served.stderr()
    assert "/v3/account/summary" in log  # the capture works: the access log line is there
    for secret in (ACCESS, REFRESH, served.key):
        assert secret not in log


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
    with_catalog = {**cli.env, "KEYGATE_CATALOG_DIR": str(catalog)}
    commands = [
        (fresh.env, ["serve", "--port", port]),
        (with_catalog, ["serve", "--port", port]),
    ]
    running = [
        subprocess.Popen(
            [str(KEYGATE), *argv],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for env, argv in commands
    ]
    results = []
    for proc in running:
        out, err = proc.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    no_key, bad_catalog = (assert_one_line_error(r) for r in results)
    assert "No encryption key" in no_key
    assert "KEYGATE_ENCRYPTION_KEY" in no_key
    assert str(bad) in bad_catalog
    assert "base_url" in bad_catalog
    assert not os.path.exists(fresh.data_dir / "encryption.key")
