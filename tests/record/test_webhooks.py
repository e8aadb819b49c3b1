"""Webhooks over real HTTP: registered with `POST /webhooks`, delivered per Standard Webhooks
to a loopback receiver that verifies each signature with the `standardwebhooks` library."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from keygate.store.events import EventType
from keygate.store.records import Status
from keygate.store.schema import WebhookDeliveryRow, utcnow
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, Tenant
from tests.support.servers import ServerThread
from tests.support.webhook_receiver import WebhookReceiver, serve_receiver

FAST = {
    "webhook_poll_interval": 0.05,
    "webhook_retry_schedule": [0, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
    "webhook_timeout": 5.0,
}


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeygateHarness]:
    """A Keygate whose delivery worker looks at the outbox every 50 ms and retries fast."""
    directory = tmp_path_factory.mktemp("keygate-webhooks")
    harness = KeygateHarness(directory, fresh_database(directory, "kg_webhooks"), **FAST)
    yield harness
    harness.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, ServerThread]]:
    made = WebhookReceiver()
    server = serve_receiver(made)
    yield made, server
    made.hold.clear()
    server.stop()


def register(tenant: Tenant, url: str, types: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if types is not None:
        body["event_types"] = types
    response = tenant.http.post("/webhooks", json=body)
    assert response.status_code == 201, response.text
    webhook: dict[str, Any] = response.json()["webhook"]
    return webhook


def test_every_event_type_is_delivered_signed(
    hooks: KeygateHarness, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    tenant = hooks.tenant()
    webhook = register(tenant, f"{server.url}/hooks")
    got.secret = webhook["secret"]
    assert webhook["secret"].startswith("whsec_")
    assert "secret" not in tenant.http.get("/webhooks").json()["webhooks"][0]
    assert webhook["secret"] not in tenant.http.get(f"/webhooks/{webhook['webhook_id']}").text

    runtime = hooks.runtime
    created = tenant.http.post("/connections", json={"app": "klaviyo"}).json()["connection"]
    connection_id = created["connection_id"]

    async def happen() -> None:
        await runtime.connections.activate(connection_id, {"access_token": "tok-first-7f3e"}, None)
        await runtime.connections.activate(connection_id, {"access_token": "tok-second-7f3e"}, None)
        async with runtime.connections.lock_credential(connection_id) as held:
            await held.store_tokens({"access_token": "tok-third-7f3e"}, None, utcnow())
        async with runtime.connections.lock_credential(connection_id) as held:
            await held.record_failure(1, utcnow() + timedelta(seconds=5), utcnow())
        await runtime.connections.set_status(connection_id, Status.FAILED, "refresh_failed")
        _, key = await runtime.keys.create_key(tenant.workspace_id, "more")
        await runtime.keys.revoke_key(key.prefix)
        await runtime.app_configs.update("constant-contact", {"client_id": "cid-webhooks"})

    hooks.run(happen())
    assert tenant.http.delete(f"/connections/{connection_id}").status_code == 200

    wanted = {t.value for t in EventType}
    wait_for(lambda: {r.body["type"] for r in got.accepted()} >= wanted)
    assert all(r.verified for r in got.received), "every delivery verifies"
    for record in got.received:
        assert record.webhook_id.startswith("msg_")
        assert "tok-" not in str(record.body)
        data = record.body["data"]
        assert data["event_id"].startswith("evt_")
    by_type = {r.body["type"]: r.body["data"] for r in got.received}
    assert by_type["connection.created"]["connection_id"] == connection_id
    assert by_type["connection.created"]["actor"] == f"key:{tenant.key[:11]}"
    assert by_type["connection.refreshed"]["actor"] == "keygate"
    assert by_type["app.client_configured"]["app"] == "constant-contact"

    shown = tenant.http.get(f"/webhooks/{webhook['webhook_id']}").json()
    delivered = [d for d in shown["deliveries"] if d["status"] == "delivered"]
    assert {d["delivery_id"] for d in delivered} <= {r.webhook_id for r in got.received}
    assert delivered[0]["attempts"][0]["status_code"] == 200
    assert delivered[0]["attempts"][0]["latency_ms"] >= 0
    tenant.close()


def test_a_receiver_down_for_a_while_gets_every_event_in_order(
    hooks: KeygateHarness, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    tenant = hooks.tenant()
    webhook = register(tenant, f"{server.url}/in-order", ["connection.created"])
    got.secret = webhook["secret"]
    got.status = 503
    ids = []
    for _ in range(5):
        created = tenant.http.post("/connections", json={"app": "klaviyo"})
        ids.append(created.json()["connection"]["connection_id"])
    wait_for(lambda: len(got.received) >= 3)  # it tried, and tried again
    assert {r.body["data"]["connection_id"] for r in got.received} == {ids[0]}, (
        "nothing overtakes the first event while it is undelivered"
    )
    got.status = 200
    wait_for(lambda: len(got.accepted()) >= 5)
    order = [r.body["data"]["connection_id"] for r in got.accepted()]
    assert order == ids
    first_tries = [r.webhook_id for r in got.received if r.body["data"]["connection_id"] == ids[0]]
    assert len(set(first_tries)) == 1, "every attempt at one event has the same webhook-id"
    shown = tenant.http.get(f"/webhooks/{webhook['webhook_id']}").json()
    oldest = shown["deliveries"][-1]
    assert [a["status_code"] for a in oldest["attempts"]][-1] == 200
    assert 503 in [a["status_code"] for a in oldest["attempts"]]
    tenant.close()


def test_retry_after_is_honoured(
    hooks: KeygateHarness, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    tenant = hooks.tenant()
    webhook = register(tenant, f"{server.url}/later", ["connection.created"])
    got.secret = webhook["secret"]
    got.status, got.retry_after = 429, "2"
    tenant.http.post("/connections", json={"app": "klaviyo"})
    wait_for(lambda: got.received)
    got.status = 200
    wait_for(lambda: got.accepted())
    first, second = got.received[0], got.accepted()[0]
    # The schedule says 0.2 s; the receiver asked for 2 s.
    assert second.at - first.at >= 1.9
    tenant.close()


def test_an_endpoint_that_answers_410_is_disabled(
    hooks: KeygateHarness, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    tenant = hooks.tenant()
    webhook = register(tenant, f"{server.url}/gone", ["connection.created"])
    got.status = 410
    tenant.http.post("/connections", json={"app": "klaviyo"})
    shown = wait_for(
        lambda: (
            body
            if (body := tenant.http.get(f"/webhooks/{webhook['webhook_id']}").json())["webhook"][
                "status"
            ]
            == "disabled"
            else None
        )
    )
    assert "410" in shown["webhook"]["disabled_reason"]
    tenant.http.post("/connections", json={"app": "klaviyo"})
    time.sleep(0.5)
    assert len(got.received) == 1, "nothing more is sent to a disabled endpoint"
    tenant.close()


def test_redeliver_sends_the_same_webhook_id_again(
    hooks: KeygateHarness, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    tenant = hooks.tenant()
    webhook = register(tenant, f"{server.url}/again", ["connection.created"])
    got.secret = webhook["secret"]
    tenant.http.post("/connections", json={"app": "klaviyo"})
    wait_for(lambda: got.accepted())
    delivery = tenant.http.get(f"/webhooks/{webhook['webhook_id']}").json()["deliveries"][0]
    path = f"/webhooks/{webhook['webhook_id']}/deliveries/{delivery['delivery_id']}/redeliver"
    assert tenant.http.post(path).status_code == 202
    wait_for(lambda: len(got.accepted()) == 2)
    assert got.received[0].webhook_id == got.received[1].webhook_id == delivery["delivery_id"]
    assert all(r.verified for r in got.received)
    bad = tenant.http.post(f"/webhooks/{webhook['webhook_id']}/deliveries/msg_nope/redeliver")
    assert bad.status_code == 404
    tenant.close()


def test_finished_deliveries_past_the_retention_are_pruned_and_pending_ones_kept(
    hooks: KeygateHarness, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    busy = WebhookReceiver(status=503, retry_after="3600")  # retried in an hour: stays pending
    busy_server = serve_receiver(busy)
    tenant = hooks.tenant()
    try:
        done = register(tenant, f"{server.url}/done", ["connection.created"])
        waiting = register(tenant, f"{busy_server.url}/later", ["connection.created"])
        tenant.http.post("/connections", json={"app": "klaviyo"})
        wait_for(lambda: got.received and busy.received)

        def deliveries(webhook: dict[str, Any]) -> list[dict[str, Any]]:
            shown = tenant.http.get(f"/webhooks/{webhook['webhook_id']}")
            assert shown.status_code == 200, shown.text
            found: list[dict[str, Any]] = shown.json()["deliveries"]
            return found

        wait_for(lambda: [d["status"] for d in deliveries(done)] == ["delivered"])
        assert [d["status"] for d in deliveries(waiting)] == ["pending"]
        ids = [d["delivery_id"] for d in deliveries(done) + deliveries(waiting)]

        async def age() -> int:
            # Both deliveries' events happened 100 days ago; the retention is 90 (the default).
            async with hooks.runtime.db.sessions() as session, session.begin():
                await session.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id.in_(ids))
                    .values(created_at=utcnow() - timedelta(days=100))
                )
            return await hooks.runtime.webhooks.prune_finished(timedelta(days=90))

        assert hooks.runtime.settings.event_retention_days == 90
        assert hooks.run(age()) == 1
        assert deliveries(done) == [], "the delivered one is gone, with its attempts"
        assert [d["status"] for d in deliveries(waiting)] == ["pending"], "never a pending one"
    finally:
        tenant.close()
        busy_server.stop()


def test_endpoints_are_confined_to_their_workspace_and_targets_are_checked(
    hooks: KeygateHarness, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    got, server = receiver
    tenant, other = hooks.tenant(), hooks.tenant()
    webhook = register(tenant, f"{server.url}/mine", ["connection.created"])
    webhook_id = webhook["webhook_id"]
    assert other.http.get("/webhooks").json()["webhooks"] == []
    assert other.http.get(f"/webhooks/{webhook_id}").status_code == 404
    assert other.http.delete(f"/webhooks/{webhook_id}").status_code == 404
    other.http.post("/connections", json={"app": "klaviyo"})
    time.sleep(0.5)
    assert got.received == [], "another workspace's events never reach the endpoint"
    for url in ("ftp://example.com/x", "http://user:pw@example.com/", "not a url", "http://"):
        refused = tenant.http.post("/webhooks", json={"url": url})
        assert refused.status_code == 400, url
        assert refused.headers["keygate-error"] == "invalid_request"
    unknown = tenant.http.post("/webhooks", json={"url": server.url, "event_types": ["nope"]})
    assert unknown.status_code == 400
    assert tenant.http.delete(f"/webhooks/{webhook_id}").status_code == 200
    assert tenant.http.get(f"/webhooks/{webhook_id}").status_code == 404
    tenant.close()
    other.close()


def test_the_allow_list_restricts_destinations(tmp_path: Path) -> None:
    harness = KeygateHarness(
        tmp_path,
        fresh_database(tmp_path, "kg_webhook_allow"),
        webhook_allowed_destinations=["hooks.example.com", "127.0.0.0/8"],
    )
    try:
        tenant = harness.tenant()
        assert register(tenant, "http://127.0.0.1:9/x")["status"] == "enabled"
        assert register(tenant, "https://hooks.example.com/x")["status"] == "enabled"
        refused = tenant.http.post("/webhooks", json={"url": "https://other.example.net/x"})
        assert refused.status_code == 400
        assert "KEYGATE_WEBHOOK_ALLOWED_DESTINATIONS" in refused.json()["error"]["message"]
        refused = tenant.http.post("/webhooks", json={"url": "http://10.1.2.3/x"})
        assert refused.status_code == 400
        tenant.close()
    finally:
        harness.stop()


def test_a_delivery_connects_to_the_address_the_allow_list_admitted(
    tmp_path: Path, receiver: tuple[WebhookReceiver, ServerThread]
) -> None:
    """DNS rebinding: the allow-list admits a name by its addresses, and the delivery must go
    to one of those, not to whatever a second lookup answers. The name here resolves only in
    Keygate's check (the test stands in for DNS); the system resolver knows nothing of it, so a
    delivery that looked the name up again could not connect at all. Before: every attempt
    failed with ConnectError."""
    got, server = receiver
    harness = KeygateHarness(
        tmp_path,
        fresh_database(tmp_path, "kg_webhook_pin"),
        webhook_allowed_destinations=["127.0.0.0/8"],
        **FAST,
    )
    try:
        policy = harness.app.webhook_destinations
        assert policy is not None
        looked_up: list[str] = []

        async def dns(host: str) -> list[str]:
            looked_up.append(host)
            return ["127.0.0.1"] if host == "hooks.rebind.invalid" else []

        policy.resolve = dns
        tenant = harness.tenant()
        port = server.url.rsplit(":", 1)[1]
        webhook = register(tenant, f"http://hooks.rebind.invalid:{port}/pinned")
        got.secret = webhook["secret"]
        tenant.http.post("/connections", json={"app": "klaviyo"})
        delivered = wait_for(lambda: got.received)
        assert delivered[0].verified
        assert delivered[0].host == f"hooks.rebind.invalid:{port}"
        assert "hooks.rebind.invalid" in looked_up
        refused = tenant.http.post("/webhooks", json={"url": "http://elsewhere.invalid/x"})
        assert refused.status_code == 400, "a name that resolves outside the list is refused"
        tenant.close()
    finally:
        harness.stop()


def test_two_replicas_deliver_each_event_once_in_order(
    hooks: KeygateHarness,
    receiver: tuple[WebhookReceiver, ServerThread],
    tmp_path: Path,
) -> None:
    got, server = receiver
    second = KeygateHarness(
        tmp_path,
        hooks.settings.resolved_database_url,
        encryption_key=SecretStr(hooks.encryption_key),
        migrate_on_start=False,
        **FAST,
    )
    try:
        tenant = hooks.tenant()
        webhook = register(tenant, f"{server.url}/replicas", ["connection.created"])
        got.secret = webhook["secret"]
        ids = []
        via_second = httpx.Client(
            base_url=second.url, headers={"Authorization": f"Bearer {tenant.key}"}
        )
        for index in range(8):
            # Events recorded by either replica; both delivery workers poll the one outbox.
            http = tenant.http if index % 2 else via_second
            created = http.post("/connections", json={"app": "klaviyo"})
            ids.append(created.json()["connection"]["connection_id"])
        wait_for(lambda: len(got.accepted()) >= 8)
        time.sleep(0.5)  # time for a duplicate to show, if there were one
        assert [r.body["data"]["connection_id"] for r in got.received] == ids
        assert all(r.verified for r in got.received)
        via_second.close()
        tenant.close()
    finally:
        second.stop()
