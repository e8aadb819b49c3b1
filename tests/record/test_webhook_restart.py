"""A `keygate serve` killed (SIGKILL) while a delivery is in flight delivers it after a
restart, with the same webhook-id: the outbox row outlives the process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from keygate.crypto import generate_key
from keygate.runtime import Runtime
from keygate.settings import Settings
from tests.record.test_webhooks import wait_for
from tests.support.databases import fresh_database
from tests.support.processes import wait_until_serving
from tests.support.servers import ServerThread, free_port
from tests.support.webhook_receiver import WebhookReceiver, serve_receiver

KEYGATE = str(Path(sys.executable).with_name("keygate"))


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ServerThread]]:
    made = WebhookReceiver()
    server = serve_receiver(made)
    yield made, server
    made.hold.clear()
    server.stop()


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        popen = subprocess.Popen(
            [KEYGATE, "serve", "--workers", "1", "--port", str(port)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: SIGKILL reaches granian's worker too
        )
    wait_until_serving(f"http://127.0.0.1:{port}", popen, log.read_text, within=60)
    return popen


def _kill(popen: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait(20)


def test_a_delivery_cut_by_sigkill_is_sent_again_after_restart(
    tmp_path: Path, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = fresh_database(tmp_path, "kg_webhook_restart")
    key = generate_key()
    settings = Settings(data_dir=tmp_path, database_url=database_url, encryption_key=SecretStr(key))

    async def prepare() -> str:
        runtime = await Runtime.open(settings)
        try:
            workspace = await runtime.keys.ensure_workspace("default")
            api_key, _ = await runtime.keys.create_key(workspace.id)
            return api_key
        finally:
            await runtime.close()

    api_key = asyncio.run(prepare())
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
    env.update(
        KEYGATE_DATA_DIR=str(tmp_path),
        KEYGATE_DATABASE_URL=database_url,
        KEYGATE_ENCRYPTION_KEY=key,
        KEYGATE_PUBLIC_URL=url,
        KEYGATE_WEBHOOK_POLL_INTERVAL="0.1",
        KEYGATE_WEBHOOK_LEASE_SECONDS="2",
        KEYGATE_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5",
        KEYGATE_WEBHOOK_TIMEOUT="60",
    )
    log = tmp_path / "serve.log"
    popen = _serve(env, port, log)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    try:
        created = client.post(
            "/webhooks", json={"url": f"{server.url}/hook", "event_types": ["connection.created"]}
        )
        assert created.status_code == 201, created.text
        webhook = created.json()["webhook"]
        got.secret = webhook["secret"]
        got.hold.set()  # the receiver keeps the first delivery waiting for its answer
        assert client.post("/connections", json={"app": "klaviyo"}).status_code == 201
        assert got.held.wait(30), "the delivery reached the receiver"
        _kill(popen)
        got.hold.clear()

        popen = _serve(env, port, log)
        wait_for(lambda: got.accepted() and len(got.received) >= 2, timeout=60)
        ids = {r.webhook_id for r in got.received}
        assert len(ids) == 1, f"one event, one webhook-id: {ids}"
        assert all(r.verified for r in got.received)
        shown = client.get(f"/webhooks/{webhook['webhook_id']}").json()
        [delivery] = shown["deliveries"]
        assert delivery["delivery_id"] in ids
        assert delivery["status"] == "delivered"
    finally:
        client.close()
        _kill(popen)
