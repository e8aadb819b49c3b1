"""Constant Contact's device flow (RFC 8628): `keygate connections create … --device`.

End to end, the CLI runs as a subprocess against the Constant Contact sandbox with the
operator's KEYGATE_* environment; the person approves (or denies) on the sandbox's device page.
The polling rules (`authorization_pending`, `slow_down`, `expired_token`, transient failures)
are checked against a scripted provider with a fake clock, so they take no real time.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from pyreqwest.client import Client, ClientBuilder
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keygate.catalog.loader import AppOverrides, ConfiguredApp, configure_app, load_catalog
from keygate.connect.device_flow import DeviceFlowFailed, authorize_device
from keygate.crypto import Cipher, generate_key
from keygate.oauth.device import DEVICE_CODE_GRANT, DeviceAuthorization
from keygate.runtime import Runtime
from keygate.secret import Secret
from keygate.settings import Settings
from keygate.store.connections import ConnectionFilter, ConnectionRepository
from keygate.store.database import Database
from keygate.store.engine import create_engine, migrate
from keygate.store.keys import KeyRepository
from keygate.store.records import Status
from keygate.store.schema import Credential
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness
from tests.support.sandboxes import CLIENT_ID, CLIENT_SECRET, Sandbox, sandbox_env, start_sandbox
from tests.support.servers import ServerThread

KEYGATE = str(Path(sys.executable).parent / "keygate")
DEVICE_PATH = "/oauth2/default/v1/device/authorize"
CODE_LINE = re.compile(r"open (\S+) and enter the code: (\S+)")


# --- end to end: the CLI against the Constant Contact sandbox ---------------------------------


@pytest.fixture(scope="module")
def cc() -> Iterator[Sandbox]:
    """A Constant Contact sandbox that asks to be polled every second."""
    sandbox = start_sandbox(
        "constant-contact", "http://127.0.0.1:9/oauth/callback", device_poll_interval=1
    )
    yield sandbox
    sandbox.server.stop()


@pytest.fixture
def operator_env(tmp_path: Path, cc: Sandbox) -> dict[str, str]:
    """The KEYGATE_* environment of an operator whose Keygate uses the sandbox, initialised."""
    env = {
        **os.environ,
        "KEYGATE_DATA_DIR": str(tmp_path / "data"),
        "KEYGATE_DATABASE_URL": fresh_database(tmp_path, "keygate_device"),
        "KEYGATE_ENCRYPTION_KEY": generate_key(),
        **sandbox_env("constant-contact", cc),
    }
    done = subprocess.run(
        [KEYGATE, "init", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    env["TEST_API_KEY"] = json.loads(done.stdout)["key"]
    return env


def start_device_cli(env: dict[str, str]) -> tuple[subprocess.Popen[str], str, str]:
    """Start `connections create constant-contact --device --json`; (process, uri, user code)."""
    process = subprocess.Popen(
        [KEYGATE, "connections", "create", "constant-contact", "--device", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    shown: list[str] = []
    for line in process.stderr:
        shown.append(line)
        found = CODE_LINE.search(line)
        if found:
            return process, found.group(1), found.group(2)
    process.wait(10)
    raise AssertionError(f"no user code shown: {''.join(shown)}")


def decide(uri: str, user_code: str, decision: str) -> None:
    """The person opens the verification page, sees the code, and decides."""
    with httpx.Client(timeout=30) as browser:
        page = browser.get(uri, params={"user_code": user_code})
        assert page.status_code == 200
        assert 'id="approve"' in page.text
        assert user_code in page.text
        answered = browser.post(uri, data={"user_code": user_code, "decision": decision})
        assert answered.status_code == 200, answered.text


def finish(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    """Wait for the CLI; (exit code, printed connection, what it said on stderr)."""
    out, err = process.communicate(timeout=60)
    return process.returncode, json.loads(out)["connection"], err


def test_device_flow_makes_the_connection_active(
    operator_env: dict[str, str], cc: Sandbox, tmp_path: Path
) -> None:
    process, uri, user_code = start_device_cli(operator_env)
    assert uri == f"{cc.url}/oauth2/default/v1/device"
    assert process.poll() is None  # it waits for the person
    decide(uri, user_code, "approve")
    code, connection, said = finish(process)
    assert code == 0, said
    assert connection["status"] == "ACTIVE"
    assert connection["app"] == "constant-contact"
    assert cc.state.stats.token_requests[DEVICE_CODE_GRANT] >= 1

    # The tokens are stored encrypted, and the gateway uses them.
    settings = Settings(
        data_dir=Path(operator_env["KEYGATE_DATA_DIR"]),
        database_url=operator_env["KEYGATE_DATABASE_URL"],
        encryption_key=SecretStr(operator_env["KEYGATE_ENCRYPTION_KEY"]),
    )
    access, ciphertext = asyncio.run(stored_token(settings, connection["connection_id"]))
    assert access not in ciphertext
    assert access not in said

    harness = KeygateHarness(
        tmp_path / "serve",
        operator_env["KEYGATE_DATABASE_URL"],
        encryption_key=SecretStr(operator_env["KEYGATE_ENCRYPTION_KEY"]),
        apps={"constant-contact": AppOverrides(base_url=cc.url)},
    )
    try:
        response = httpx.get(
            f"{harness.url}/constant-contact/v3/account/summary",
            headers={"Authorization": f"Bearer {operator_env['TEST_API_KEY']}"},
        )
    finally:
        harness.stop()
    assert response.status_code == 200, response.text
    assert response.json()["organization_name"] == "Keygate Sandbox Store"
    assert response.headers["keygate-connection"] == connection["connection_id"]


async def stored_token(settings: Settings, connection_id: str) -> tuple[str, str]:
    """(the access token Keygate holds, the row as stored in the database)."""
    runtime = await Runtime.open(settings)
    try:
        record = await runtime.connections.credentials(connection_id)
        assert record is not None
        async with runtime.db.read() as session:
            row = await session.scalar(
                select(Credential).where(Credential.connection_id == connection_id)
            )
        assert row is not None
        return record.values["access_token"].reveal(), row.ciphertext
    finally:
        await runtime.close()


def test_device_flow_denied_ends_failed(operator_env: dict[str, str]) -> None:
    process, uri, user_code = start_device_cli(operator_env)
    decide(uri, user_code, "deny")
    code, connection, said = finish(process)
    assert code == 1
    assert "The user denied the request." in said
    assert connection["status"] == "FAILED"
    assert connection["error"]["code"] == "oauth_access_denied"
    assert "denied" in connection["error"]["message"]


def test_device_flow_refuses_an_app_without_device_endpoint(operator_env: dict[str, str]) -> None:
    done = subprocess.run(
        [KEYGATE, "connections", "create", "klaviyo", "--device"],
        env=operator_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no device authorization endpoint" in done.stderr


# --- polling rules: a scripted provider and a fake clock ---------------------------------------


class ScriptedProvider:
    """A device endpoint plus a token endpoint that answers from a script."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]], expires_in: int = 600) -> None:
        self.answers = answers
        self.expires_in = expires_in
        self.token_forms: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route(DEVICE_PATH, self.device, methods=["POST"]),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    async def device(self, request: Request) -> JSONResponse:
        assert request.headers["authorization"].startswith("Basic ")
        return JSONResponse(
            {
                "device_code": "device-code-secret",
                "user_code": "BCDF-GHJK",
                "verification_uri": "http://verify.example/device",
                "expires_in": self.expires_in,
                "interval": 2,
            }
        )

    async def token(self, request: Request) -> JSONResponse:
        self.token_forms.append({k: str(v) for k, v in (await request.form()).items()})
        status, body = self.answers.pop(0) if self.answers else (400, pending())
        return JSONResponse(body, status_code=status)


def pending(error: str = "authorization_pending") -> dict[str, Any]:
    """An RFC 8628 §3.5 error body."""
    return {"error": error, "error_description": error.replace("_", " ")}


class FakeTime:
    """A clock that only moves when the flow sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@dataclass
class DeviceFlowParts:
    """Exactly what `authorize_device` is given: the app, a client and the connections."""

    app: ConfiguredApp
    client: Client
    connections: ConnectionRepository
    keys: KeyRepository
    provider: ScriptedProvider


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[DeviceFlowParts]:
    """Constant Contact configured to talk to a scripted provider, over a fresh store."""
    provider = ScriptedProvider([])
    server = ServerThread(provider.app, lifespan="off").start()
    app = configure_app(
        load_catalog()["constant-contact"],
        AppOverrides(
            client_id=CLIENT_ID,
            client_secret=Secret(CLIENT_SECRET),
            token_url=f"{server.url}/token",
            device_authorization_url=f"{server.url}{DEVICE_PATH}",
        ),
    )
    db = Database(
        create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keygate.db'}"),
        Cipher(os.urandom(32)),
    )
    await migrate(db.engine)
    client = ClientBuilder().build()
    yield DeviceFlowParts(app, client, ConnectionRepository(db), KeyRepository(db), provider)
    await client.close()
    await db.close()
    server.stop()


async def run_flow(parts: DeviceFlowParts, time: FakeTime) -> tuple[str, list[DeviceAuthorization]]:
    ws = await parts.keys.ensure_workspace("device")
    record = await parts.connections.create(ws.id, "constant-contact", "OAUTH2", {})
    shown: list[DeviceAuthorization] = []
    await authorize_device(
        record,
        parts.app,
        shown.append,
        connections=parts.connections,
        client=parts.client,
        sleep=time.sleep,
        clock=time.clock,
    )
    return record.id, shown


async def test_polling_honours_pending_slow_down_and_transient_errors(
    scripted: DeviceFlowParts,
) -> None:
    provider = scripted.provider
    provider.answers = [
        (400, pending()),
        (400, pending("slow_down")),
        (400, pending()),
        (503, {"error": "temporarily_unavailable"}),
        (200, {"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 86400}),
    ]
    time = FakeTime()
    connection_id, shown = await run_flow(scripted, time)
    assert [grant.user_code for grant in shown] == ["BCDF-GHJK"]
    assert "device-code-secret" not in repr(shown[0])
    # Interval 2; slow_down adds 5 (RFC 8628 §3.5); a 503 doubles the wait.
    assert time.sleeps == [2, 2, 7, 7, 14]
    assert all(form["grant_type"] == DEVICE_CODE_GRANT for form in provider.token_forms)
    assert all(form["device_code"] == "device-code-secret" for form in provider.token_forms)
    record = await scripted.connections.get(connection_id)
    assert record is not None
    assert record.status is Status.ACTIVE
    stored = await scripted.connections.credentials(connection_id)
    assert stored is not None
    assert stored.values["access_token"].reveal() == "at-1"
    assert stored.values["refresh_token"].reveal() == "rt-1"
    assert stored.expires_at is not None


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((400, pending("expired_token")), "oauth_expired_token"),
        ((400, pending("access_denied")), "oauth_access_denied"),
        ((400, {"error": "invalid_grant"}), "oauth_invalid_grant"),
    ],
)
async def test_final_errors_end_the_flow_failed(
    scripted: DeviceFlowParts, answer: tuple[int, Any], code: str
) -> None:
    provider = scripted.provider
    provider.answers = [(400, pending()), answer]
    time = FakeTime()
    with pytest.raises(DeviceFlowFailed) as failed:
        await run_flow(scripted, time)
    assert failed.value.code == code
    assert len(provider.token_forms) == 2
    ws = await scripted.keys.ensure_workspace("device")
    rows, _ = await scripted.connections.list(ws.id, ConnectionFilter(), 10)
    assert rows[-1].status is Status.FAILED
    assert rows[-1].error_code == code


async def test_flow_stops_polling_when_the_code_expires(
    scripted: DeviceFlowParts,
) -> None:
    provider = scripted.provider
    provider.expires_in = 9
    time = FakeTime()
    with pytest.raises(DeviceFlowFailed) as failed:
        await run_flow(scripted, time)
    assert failed.value.code == "oauth_expired_token"
    # Polled at t=2, 4, 6, 8; at t=10 the code is past its 9 s lifetime: no more requests.
    assert len(provider.token_forms) == 4
    assert time.sleeps == [2, 2, 2, 2, 2]
