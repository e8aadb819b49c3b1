"""`GET /events`: the audit events of the caller's workspace — who did what, with ids and never
a secret — filtered and paged; another workspace's events never show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from keygate.sandbox.config import DEFAULT_PRIVATE_KEY
from keygate.store.schema import EventRow, utcnow
from tests.connect.test_api_key_flow import create_api_key_connection, submit
from tests.support.harness import KeygateHarness, Tenant
from tests.support.sandboxes import SandboxedKeygate


def events(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = tenant.http.get("/events", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    # Other tests of the session may configure an app's OAuth client: a deployment-wide event
    # every workspace sees. The tests below are about the workspace's own.
    return [e for e in found if e["type"] != "app.client_configured"]


def test_connection_lifecycle_events_name_the_key_and_the_ids(
    keygate: KeygateHarness, tenant: Tenant
) -> None:
    created = tenant.http.post("/connections", json={"app": "klaviyo", "method": "API_KEY"})
    assert created.status_code == 201
    connection_id = created.json()["connection"]["connection_id"]
    assert tenant.http.delete(f"/connections/{connection_id}").status_code == 200
    found = events(tenant, connection=connection_id)
    assert [e["type"] for e in found] == ["connection.created", "connection.deleted"]
    for event in found:
        assert event["actor"] == f"key:{tenant.key[:11]}"
        assert event["connection_id"] == connection_id
        assert event["event_id"].startswith("evt_")
        assert event["data"]["app"] == "klaviyo"
        datetime.fromisoformat(event["time"])
    assert tenant.key not in tenant.http.get("/events").text


def test_activation_reauthorization_and_key_events(keygate: KeygateHarness, tenant: Tenant) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "first-secret"})
    keygate.run(keygate.runtime.connections.activate(conn.id, {"access_token": "2nd-secret"}, None))

    async def key_events() -> str:
        _, record = await keygate.runtime.keys.create_key(tenant.workspace_id, "ci")
        await keygate.runtime.keys.revoke_key(record.prefix)
        return record.prefix

    prefix = keygate.run(key_events())
    types = [e["type"] for e in events(tenant)]
    assert types == [
        "api_key.created",  # the tenant's own key
        "connection.created",
        "connection.activated",
        "connection.reauthorized",
        "api_key.created",
        "api_key.revoked",
    ]
    revoked = events(tenant, type="api_key.revoked")
    assert [e["data"]["key_prefix"] for e in revoked] == [prefix]
    assert revoked[0]["actor"] == "operator"
    body = tenant.http.get("/events").text
    assert "first-secret" not in body
    assert "2nd-secret" not in body


def test_filters_cursor_and_bad_filters(keygate: KeygateHarness, tenant: Tenant) -> None:
    for _ in range(3):
        assert tenant.http.post("/connections", json={"app": "klaviyo"}).status_code == 201
    assert len(events(tenant, type="connection.created")) == 3
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert events(tenant, since=future) == []
    page = tenant.http.get("/events", params={"limit": 2}).json()
    assert len(page["events"]) == 2
    assert page["next_cursor"]
    rest = tenant.http.get("/events", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert rest["events"]
    for name, value in (("type", "connection.exploded"), ("since", "last week")):
        response = tenant.http.get("/events", params={name: value})
        assert response.status_code == 400
        assert response.headers["keygate-error"] == "invalid_request"
        assert name in response.json()["error"]["message"]


def test_another_workspace_never_sees_the_events(keygate: KeygateHarness, tenant: Tenant) -> None:
    created = tenant.http.post("/connections", json={"app": "klaviyo"})
    connection_id = created.json()["connection"]["connection_id"]
    other = keygate.tenant()
    try:
        seen = events(other)
        assert [e["type"] for e in seen] == ["api_key.created"]  # its own key only
        assert events(other, connection=connection_id) == []
    finally:
        other.close()


def test_events_past_the_retention_are_pruned(keygate: KeygateHarness, tenant: Tenant) -> None:
    created = tenant.http.post("/connections", json={"app": "klaviyo"})
    connection_id = created.json()["connection"]["connection_id"]
    assert tenant.http.delete(f"/connections/{connection_id}").status_code == 200
    old, recent = events(tenant, connection=connection_id)
    other = keygate.tenant()
    try:
        other.http.post("/connections", json={"app": "klaviyo"})
        theirs = events(other)

        async def prune() -> int:
            async with keygate.runtime.db.sessions() as session, session.begin():
                await session.execute(
                    update(EventRow)
                    .where(EventRow.id == old["event_id"])
                    .values(at=utcnow() - timedelta(days=91))
                )
            return await keygate.runtime.prune_events()

        assert keygate.runtime.settings.event_retention_days == 90  # the default
        assert keygate.run(prune()) >= 1
        assert events(tenant, connection=connection_id) == [recent]
        assert events(other) == theirs, "recent events of every workspace are kept"
    finally:
        other.close()


def test_a_person_connecting_through_the_connect_page_is_recorded(
    sandboxed: SandboxedKeygate,
) -> None:
    tenant = sandboxed.tenant()
    try:
        connection = create_api_key_connection(tenant)
        with httpx.Client(base_url=sandboxed.keygate.url, timeout=30) as browser:
            page = browser.get(connection["url"])
            assert submit(browser, page, DEFAULT_PRIVATE_KEY).status_code == 200
            again = browser.get(
                tenant.http.get(f"/connections/{connection['connection_id']}").json()["connection"][
                    "url"
                ]
            )
            assert submit(browser, again, DEFAULT_PRIVATE_KEY).status_code == 200
        found = events(tenant, connection=connection["connection_id"])
        assert [(e["type"], e["actor"]) for e in found] == [
            ("connection.created", f"key:{tenant.key[:11]}"),
            ("connection.activated", "keygate"),
            ("connection.reauthorized", "keygate"),
        ]
        assert DEFAULT_PRIVATE_KEY not in tenant.http.get("/events").text
    finally:
        tenant.close()


def test_a_refresh_through_the_gateway_and_a_rejected_refresh_token_are_recorded(
    sandboxed: SandboxedKeygate,
) -> None:
    tenant = sandboxed.tenant()
    try:
        conn = sandboxed.oauth_connection(tenant, "klaviyo", expires_in=-10)
        response = tenant.http.get("/klaviyo/api/accounts", headers={"Maton-Connection": conn})
        assert response.status_code == 200
        refreshed = events(tenant, connection=conn, type="connection.refreshed")
        assert [e["actor"] for e in refreshed] == ["keygate"]
        # The token endpoint fails: the refresh is retried later.
        flaky = sandboxed.oauth_connection(tenant, "klaviyo", expires_in=-10)
        sandboxed.klaviyo.admin("faults", {"token_endpoint": "error500"})
        try:
            tenant.http.get("/klaviyo/api/accounts", headers={"Maton-Connection": flaky})
        finally:
            sandboxed.klaviyo.admin("faults", {"token_endpoint": "ok"})
        retried = events(tenant, connection=flaky, type="connection.refresh_failed")
        assert retried
        assert retried[0]["data"]["failures"] == 1
        # Someone else spends the rotating refresh token: Keygate's refresh is refused for good.
        gone, tokens = sandboxed.minted_connection(tenant, "constant-contact", expires_in=-10)
        spent = httpx.post(
            f"{sandboxed.cc.url}/oauth2/default/v1/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=("sandbox-client", "sandbox-secret"),
        )
        assert spent.status_code == 200
        path = "/constant-contact/v3/account/summary"
        assert tenant.http.get(path, headers={"Maton-Connection": gone}).status_code == 424
        failed = events(tenant, connection=gone, type="connection.failed")
        assert [e["data"]["error_code"] for e in failed] == ["reauthorization_required"]
    finally:
        tenant.close()
