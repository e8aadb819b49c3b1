"""`keygate encryption`: rotating the key and re-encrypting every row while a server serves."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from base64 import b64decode
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from keygate.cli.sandbox_mode import enter_sandbox_mode, leave_sandbox_mode
from keygate.crypto import KeyFile, generate_key, key_id, write_key_file
from keygate.runtime import Runtime
from keygate.settings import Settings
from keygate.store.schema import utcnow
from tests.cli.conftest import Cli
from tests.connect.oauth_dance import Browser, create, fetch, proxied_data
from tests.support.databases import fresh_database
from tests.support.processes import ROOT, Process, wait_until_serving
from tests.support.sandboxes import Sandbox, SandboxedKeygate, sandbox_env, start_sandbox
from tests.support.servers import ServerThread, free_port
from tests.support.upstream import RecordingUpstream

KEYGATE = str(Path(sys.executable).with_name("keygate"))
CC_PATH = "/constant-contact/v3/account/summary"
KLAVIYO_PATH = "/klaviyo/api/profiles"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A Constant Contact sandbox (rotating refresh tokens)."""
    made = start_sandbox("constant-contact", "http://127.0.0.1:1/oauth/callback")
    yield made
    made.server.stop()


class Load:
    """Gateway requests in a loop on threads of their own until stopped: each status counted."""

    def __init__(self, url: str, key: str, routes: dict[str, str]) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(url, key, connection, path), daemon=True)
            for path, connection in routes.items()
            for _ in range(2)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, url: str, key: str, connection: str, path: str) -> None:
        headers = {"Authorization": f"Bearer {key}", "Maton-Connection": connection}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{path}: {type(exc).__name__}")
                    continue
                self.statuses[path, response.status_code] += 1
                if response.status_code != 200:
                    self.failures.append(f"{path}: {response.status_code} {response.text[:200]}")
                time.sleep(0.01)

    def served(self, path: str) -> int:
        """Requests to `path` answered 200 so far."""
        return self.statuses[path, 200]

    def stop(self) -> None:
        """Stop and wait for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _encryption(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`keygate encryption ARGS…` as a separate process, as an operator runs it."""
    return subprocess.run(
        [KEYGATE, "encryption", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _prepare(settings: Settings, tokens: dict[str, str]) -> tuple[str, str, str]:
    """A workspace key, an OAuth connection (Constant Contact, expiring within seconds, so it
    is refreshed under load), an API-key connection (Klaviyo) and a stored client secret."""

    async def make() -> tuple[str, str, str]:
        runtime = await Runtime.open(settings)
        try:
            ws = await runtime.keys.ensure_workspace("default")
            key, _ = await runtime.keys.create_key(ws.id)
            oauth = await runtime.connections.create(ws.id, "constant-contact", "OAUTH2", {})
            expires = utcnow() + timedelta(seconds=4)
            await runtime.connections.activate(oauth.id, tokens, expires)
            api_key = await runtime.connections.create(ws.id, "klaviyo", "API_KEY", {})
            await runtime.connections.activate(api_key.id, {"api_key": "pk_rotation"}, None)
            await runtime.app_configs.update(
                "klaviyo", {"client_id": "kl-client", "client_secret": "kl-secret"}
            )
            return key, oauth.id, api_key.id
        finally:
            await runtime.close()

    return asyncio.run(make())


def _decrypt(settings: Settings, *connections: str) -> tuple[list[dict[str, str]], str | None]:
    """The connections' credentials and the stored client secret, decrypted with the key
    file."""

    async def read() -> tuple[list[dict[str, str]], str | None]:
        runtime = await Runtime.open(settings, run_migrations=False)
        try:
            values = []
            for connection_id in connections:
                credential = await runtime.connections.credentials(connection_id)
                assert credential is not None
                values.append({k: v.reveal() for k, v in credential.values.items()})
            stored = (await runtime.app_configs.all())["klaviyo"]
            secret = stored.client_secret
            return values, secret.reveal() if secret is not None else None
        finally:
            await runtime.close()

    return asyncio.run(read())


@pytest.mark.timeout(240)
def test_rotate_and_reencrypt_under_load_fail_no_request_and_leave_the_old_key_unneeded(
    tmp_path: Path,
    sandbox: Sandbox,
    upstream: tuple[RecordingUpstream, ServerThread],
) -> None:
    data_dir = tmp_path / "data"
    database = fresh_database(tmp_path, "kg_key_rotation")
    settings = Settings(data_dir=data_dir, database_url=database)
    write_key_file(settings.key_file)
    old = key_id(KeyFile(settings.key_file).read()[0])
    tokens = sandbox.mint_tokens()
    key, oauth_id, api_key_id = _prepare(
        settings,
        {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]},
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
    env = {
        **base,
        "KEYGATE_DATA_DIR": str(data_dir),
        "KEYGATE_DATABASE_URL": database,
        "KEYGATE_PORT": str(port),
        "KEYGATE_REFRESH_MARGIN_SECONDS": "2",
        "KEYGATE_CACHE_POLL_INTERVAL": "0.2",
        "KEYGATE_ACCESS_LOG": "false",
        "KEYGATE_APPS__KLAVIYO__BASE_URL": upstream[1].url,
        **sandbox_env("constant-contact", sandbox),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [KEYGATE, "serve", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    server = Process(popen, log)
    load: Load | None = None
    try:
        wait_until_serving(url, popen, server.output, within=60)
        load = Load(url, key, {CC_PATH: oauth_id, KLAVIYO_PATH: api_key_id})
        _wait_for(
            lambda: load is not None and min(load.served(CC_PATH), load.served(KLAVIYO_PATH)) >= 5
        )

        rotated = _encryption(env, "rotate", "--json")
        assert rotated.returncode == 0, rotated.stderr
        new = json.loads(rotated.stdout)["current"]
        assert json.loads(rotated.stdout)["previous"] == old != new
        refused = _encryption(env, "retire", old)
        assert refused.returncode == 1
        assert "still need key" in refused.stdout + refused.stderr
        reencrypted = _encryption(env, "reencrypt", "--batch-size", "1", "--json")
        assert reencrypted.returncode == 0, reencrypted.stderr
        assert json.loads(reencrypted.stdout)["undecryptable"] == []

        # A write clears every worker's cache: the next requests decrypt what the other process
        # re-encrypted, under a key the server did not start with.
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as control:
            assert control.post("/connections", json={"app": "klaviyo"}).status_code == 201
        marks = {path: load.served(path) for path in (CC_PATH, KLAVIYO_PATH)}
        _wait_for(
            lambda: all(load is not None and load.served(p) >= n + 10 for p, n in marks.items())
        )

        status = _encryption(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        by_id = {entry["id"]: entry for entry in json.loads(status.stdout)["keys"]}
        assert by_id[old]["total"] == 0, by_id
        assert by_id[new]["current"] is True
        assert by_id[new]["rows"]["credentials"] == 2
        assert by_id[new]["rows"]["app_configs"] == 1
        retired = _encryption(env, "retire", old)
        assert retired.returncode == 0, retired.stdout + retired.stderr
        assert old not in {key_id(k) for k in KeyFile(settings.key_file).read()}

        # Still serving, from a cache cleared again, with the old key gone from the file.
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as control:
            assert control.post("/connections", json={"app": "klaviyo"}).status_code == 201
        marks = {path: load.served(path) for path in (CC_PATH, KLAVIYO_PATH)}
        _wait_for(
            lambda: all(load is not None and load.served(p) >= n + 5 for p, n in marks.items())
        )
        load.stop()
    finally:
        if load is not None:
            load.stop()
        server.stop()
    assert load.failures == [], load.failures[:10]
    assert load.served(CC_PATH) >= 20, load.statuses
    assert load.served(KLAVIYO_PATH) >= 20, load.statuses
    # The OAuth token expired during the run and was refreshed (a credential written meanwhile).
    assert sandbox.admin("stats")["token_requests"].get("refresh_token", 0) >= 1
    (oauth, api_key), secret = _decrypt(settings, oauth_id, api_key_id)
    assert oauth["access_token"]
    assert oauth["refresh_token"]
    assert api_key == {"api_key": "pk_rotation"}
    assert secret == "kl-secret"
    assert "Traceback" not in server.output()


def _served_since(load: Load | None, marks: dict[str, int], more: int) -> bool:
    """Whether every path got `more` answers since the counts in `marks` (no failure yet)."""
    assert load is not None
    assert not load.failures, load.failures[:5]
    return load is not None and all(load.served(path) >= n + more for path, n in marks.items())


def _wait_for(condition: Callable[[], bool], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_pending_authorization_and_sandbox_modes_saved_secret_outlive_the_old_key(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    database = fresh_database(tmp_path, "kg_key_rotation_pending")
    write_key_file(data_dir / "encryption.key")
    old = key_id(KeyFile(data_dir / "encryption.key").read()[0])
    sandboxed = SandboxedKeygate(data_dir, database, encryption_key=None)
    browser = Browser()
    cli = Cli(data_dir, database)
    tenant = sandboxed.tenant()
    try:
        keygate = sandboxed.keygate
        # The operator's own client secret, which `serve --sandbox` keeps in the data dir.
        keygate.configure("klaviyo", client_secret="operator-secret")
        keygate.run(enter_sandbox_mode(keygate.runtime, "127.0.0.1", free_port()))
        # A person half-way through an OAuth authorization: its PKCE verifier is stored.
        connection = create(tenant, "constant-contact")
        authorize_url = browser.continue_from(connection["url"])

        new = cli.json("encryption", "rotate")["current"]
        by_id = {k["id"]: k for k in cli.json("encryption", "status")["keys"]}
        assert by_id[old]["rows"]["connect_sessions"] == 1
        assert by_id[old]["rows"]["sandbox_mode"] == 1
        assert "still need key" in cli.fails("encryption", "retire", old)
        done = cli.json("encryption", "reencrypt")
        assert done["rewritten"]["connect_sessions"] == 1
        assert done["rewritten"]["sandbox_mode"] == 1

        # The running server finishes the authorization with the verifier re-encrypted by
        # another process under a key it did not start with (its browser cookie was signed
        # with the old key, which it still lists).
        finished = browser.get(browser.consent(authorize_url))
        assert finished.status_code == 200, finished.text
        assert fetch(tenant, connection["connection_id"])["status"] == "ACTIVE"
        proxied_data(tenant, "constant-contact", connection["connection_id"])
        assert cli.json("encryption", "retire", old) == {"retired": old, "current": new}

        # Leaving sandbox mode puts the operator's secret back, decrypted with the new key.
        async def leave() -> str | None:
            runtime = await Runtime.open(keygate.settings, run_migrations=False)
            try:
                assert await leave_sandbox_mode(runtime) == ["constant-contact", "klaviyo"]
                secret = (await runtime.app_configs.all())["klaviyo"].client_secret
                return secret.reveal() if secret else None
            finally:
                await runtime.close()

        assert asyncio.run(leave()) == "operator-secret"
    finally:
        tenant.close()
        browser.close()
        sandboxed.stop()


def test_with_the_variable_the_commands_say_what_to_change(tmp_path: Path) -> None:
    first, second = generate_key(), generate_key()
    ids = [key_id(b64decode(first)), key_id(b64decode(second))]
    cli = Cli(tmp_path / "data", None, env={"KEYGATE_ENCRYPTION_KEY": f"{first},{second}"})
    cli.ok("init")
    status = cli.json("encryption", "status")
    assert status["source"] == "KEYGATE_ENCRYPTION_KEY"
    assert [k["id"] for k in status["keys"]] == ids
    assert "append this key" in cli.ok("encryption", "add")
    assert "move key" in cli.ok("encryption", "rotate", ids[1])
    assert "remove key" in cli.ok("encryption", "retire", ids[1])
    assert "is current" in cli.fails("encryption", "retire", ids[0])
    assert not (tmp_path / "data" / "encryption.key").exists()
