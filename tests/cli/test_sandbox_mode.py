"""`keygate serve --sandbox` beside the CLI: both use the sandboxes, and a plain serve undoes it.

The newcomer path: `make run` in one shell, `keygate …` in another with only the data dir in
common. Sandbox mode is stored, so the second shell sees the sandboxes' URLs and OAuth client
(the device flow works), the gateway shows the sandboxes' demo data, and the next plain
`keygate serve` puts the operator's own app settings back.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from keygate.runtime import Runtime
from keygate.settings import Settings
from tests.cli.conftest import KEYGATE, Cli
from tests.support.processes import stop_process
from tests.support.servers import bindable, free_port

CODE_LINE = re.compile(r"open (\S+) and enter the code: (\S+)")


def free_port_pair() -> int:
    """A port that is free, with the next two free too (the sandboxes)."""
    for _ in range(100):
        port = free_port()
        if port < 65000 and bindable(port + 1) and bindable(port + 2):
            return port
    raise AssertionError("no free pair of ports")


def _wait_for(url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer in 60 s: {log.read_text()}"
        time.sleep(0.2)


@contextmanager
def serving(cli: Cli, tmp: Path, *args: str) -> Iterator[Path]:
    """`keygate serve ARGS…` until the block ends; yields the file its stdout goes to."""
    port = args[args.index("--port") + 1]
    out = tmp / f"serve-{time.monotonic_ns()}.out"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [str(KEYGATE), "serve", *args],
            env=cli.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # granian's workers go down with the group
        )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process, out)
        if "--sandbox" in args:
            first = int(args[args.index("--sandbox-port") + 1])
            _wait_for(f"http://127.0.0.1:{first + 1}/_sandbox/stats", process, out)
        yield out
    finally:
        stop_process(process, group=True)


def device_flow(cli: Cli) -> dict[str, object]:
    """`connections create constant-contact --device`, approved on the sandbox's page."""
    process = subprocess.Popen(
        [str(KEYGATE), "connections", "create", "constant-contact", "--device", "--json"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    said = []
    for line in process.stderr:
        said.append(line)
        found = CODE_LINE.search(line)
        if found:
            break
    else:
        process.wait(10)
        raise AssertionError("no device code shown: " + "".join(said))
    uri, user_code = found.groups()
    answered = httpx.post(uri, data={"user_code": user_code, "decision": "approve"}, timeout=30)
    assert answered.status_code == 200, answered.text
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(said) + err
    connection: dict[str, object] = json.loads(out)["connection"]
    return connection


def stored_client_secret(cli: Cli, app: str) -> str | None:
    """The client secret the store holds for `app`, decrypted."""

    async def read() -> str | None:
        settings = Settings(data_dir=cli.data_dir, database_url=cli.database_url)
        runtime = await Runtime.open(settings)
        try:
            secret = (await runtime.app_configs.all())[app].client_secret
            return secret.reveal() if secret else None
        finally:
            await runtime.close()

    return asyncio.run(read())


def test_the_cli_beside_serve_sandbox_uses_the_sandboxes_until_a_plain_serve(
    make_cli: Callable[..., Cli], tmp_path: Path
) -> None:
    port, first = free_port_pair(), free_port_pair()
    public = f"http://127.0.0.1:{port}"
    cli = make_cli(KEYGATE_PUBLIC_URL=public)
    key = cli.json("init")["key"]
    # The operator's own Klaviyo settings, which sandbox mode must not lose.
    cli.ok(
        "apps", "configure", "klaviyo", "--client-id", "my-client",
        "--client-secret", "my-secret-9f2c", "--base-url", "https://eu.klaviyo.example",
    )  # fmt: skip

    with serving(cli, tmp_path, "--sandbox", "--port", str(port), "--sandbox-port", str(first)):
        # Another shell, same data dir, no KEYGATE_APPS__ variables.
        cc = cli.json("apps", "show", "constant-contact")
        cc_origin = f"http://127.0.0.1:{first + 1}"
        assert cc["base_url"] == cc_origin
        assert cc["oauth"]["device_authorization_url"] == (
            f"{cc_origin}/oauth2/default/v1/device/authorize"
        )
        assert cc["oauth"]["client_id"] == "sandbox-client"
        klaviyo = cli.json("apps", "show", "klaviyo")
        assert klaviyo["base_url"] == f"http://127.0.0.1:{first}"
        assert klaviyo["oauth"]["token_url"] == f"http://127.0.0.1:{first}/oauth/token"
        assert "my-secret-9f2c" not in (cli.data_dir / "sandbox-mode.json").read_text()

        connection = device_flow(cli)
        assert connection["status"] == "ACTIVE"

        # The tour's first call shows the demo data, through the gateway.
        answer = httpx.get(
            f"{public}/constant-contact/v3/contacts",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        emails = [c["email_address"]["address"] for c in answer.json()["contacts"]]
        assert emails == [
            "jordan.lee@example.com",
            "priya.natarajan@example.com",
            "tom.becker@example.com",
        ]

    with serving(cli, tmp_path, "--port", str(port)) as out:
        assert "Left sandbox mode" in out.read_text()
    klaviyo = cli.json("apps", "show", "klaviyo")
    assert klaviyo["base_url"] == "https://eu.klaviyo.example"
    assert klaviyo["oauth"]["client_id"] == "my-client"
    assert klaviyo["oauth"]["token_url"] == "https://a.klaviyo.com/oauth/token"
    assert stored_client_secret(cli, "klaviyo") == "my-secret-9f2c"
    cc = cli.json("apps", "show", "constant-contact")
    assert cc["base_url"] == "https://api.cc.email"
    assert cc["oauth"]["client_id"] is None
    assert stored_client_secret(cli, "constant-contact") is None
    assert not (cli.data_dir / "sandbox-mode.json").exists()


def test_serve_sandbox_warns_when_the_environment_overrides_a_sandboxed_app(
    make_cli: Callable[..., Cli], tmp_path: Path
) -> None:
    port, first = free_port_pair(), free_port_pair()
    cli = make_cli(
        KEYGATE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        KEYGATE_APPS__KLAVIYO__BASE_URL="https://eu.klaviyo.example",
    )
    cli.ok("init")
    args = ("--sandbox", "--port", str(port), "--sandbox-port", str(first))
    with serving(cli, tmp_path, *args) as out:
        said = out.read_text()
    assert "Warning: KEYGATE_APPS__KLAVIYO__* in the environment override" in said
    assert "CONSTANT_CONTACT" not in said


def test_a_damaged_sandbox_mode_file_stops_serve_with_one_line(
    make_cli: Callable[..., Cli],
) -> None:
    cli = make_cli()
    cli.ok("init")
    (cli.data_dir / "sandbox-mode.json").write_text("{not json")
    line = cli.fails("serve", "--port", "1")
    assert "sandbox-mode.json is damaged" in line
