"""The Python SDK against a live Keygate and the provider sandboxes, over real HTTP."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from keygate import AsyncKeygate, Keygate
from keygate.sandbox import DEFAULT_PRIVATE_KEY
from keygate.sdk import errors
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate


@pytest.fixture
def tenant(sandboxed: SandboxedKeygate) -> Iterator[Tenant]:
    """A fresh workspace and key on the sandboxed Keygate."""
    made = sandboxed.tenant()
    yield made
    made.close()


@pytest.fixture
def kg(sandboxed: SandboxedKeygate, tenant: Tenant) -> Iterator[Keygate]:
    """The SDK for the tenant's key, configured from the environment as a user's script is."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KEYGATE_URL", sandboxed.keygate.url)
        env.setenv("KEYGATE_API_KEY", tenant.key)
        client = Keygate()
    yield client
    client.close()


def _klaviyo_key_connection(sandboxed: SandboxedKeygate, tenant: Tenant) -> str:
    record = sandboxed.keygate.import_connection(
        tenant, "klaviyo", {"api_key": DEFAULT_PRIVATE_KEY}, method="API_KEY"
    )
    return record.id


def _cc_contacts(kg: Keygate, count: int) -> None:
    """Add `count` contacts to the Constant Contact sandbox (it holds no demo data in tests)."""
    tag = uuid.uuid4().hex[:8]
    for n in range(count):
        body = {
            "email_address": {"address": f"cc-{tag}-{n}@example.com"},
            "create_source": "Account",
        }
        kg.api.post("/constant-contact/v3/contacts", json=body)


def _submit_key_later(url: str, delay: float) -> threading.Thread:
    """A person who opens the connect link and pastes the private key, after `delay` s."""

    def person() -> None:
        threading.Event().wait(delay)
        with httpx.Client(timeout=30) as browser:
            page = browser.get(url)
            token = re.search(r'name="session_token" value="([^"]+)"', page.text)
            action = re.search(r'<form method="post" action="([^"]+)"', page.text)
            assert token, page.text
            assert action, page.text
            done = browser.post(
                str(page.url.join(action.group(1))),
                data={"session_token": token.group(1), "api_key": DEFAULT_PRIVATE_KEY},
            )
            assert done.status_code == 200, done.text

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    return thread


def test_connections_create_wait_until_active_list_get_delete(kg: Keygate) -> None:
    created = kg.connections.create("klaviyo", method="API_KEY", metadata={"team": "growth"})
    assert created.status == "PENDING"
    assert created.app == "klaviyo"
    assert created.method == "API_KEY"
    assert created.metadata == {"team": "growth"}
    assert created.url
    assert created.url.startswith(f"{kg.base_url}/connect?session_token=")

    with pytest.raises(errors.WaitTimeout) as timed_out:
        kg.connections.wait(created.id, timeout=0.3, interval=0.1)
    assert timed_out.value.connection.status == "PENDING"

    person = _submit_key_later(created.url, 0.5)
    active = kg.connections.wait(created.id, until="ACTIVE", timeout=60, interval=0.2)
    person.join(30)
    assert active.status == "ACTIVE"
    assert active.connection_id == created.connection_id

    assert [c.id for c in kg.connections.list(app="klaviyo", status="ACTIVE")] == [created.id]
    assert kg.connections.list(app="constant-contact") == []
    assert kg.connections.get(created.id).status == "ACTIVE"
    # The gateway uses it: the sandbox accepts only the injected private key.
    accounts = kg.api.get("/klaviyo/api/accounts").json()
    assert accounts["data"][0]["type"] == "account"

    deleted = kg.connections.delete(created.id)
    assert deleted.status == "DELETED"
    with pytest.raises(errors.ConnectionNotFound) as missing:
        kg.connections.get(created.id)
    assert missing.value.status == 404
    assert missing.value.code == "connection_not_found"


def test_apps_list_and_get(kg: Keygate) -> None:
    names = [app.name for app in kg.apps.list()]
    assert {"klaviyo", "constant-contact"} <= set(names)
    klaviyo = kg.apps.get("klaviyo")
    assert klaviyo.pagination is not None
    assert (klaviyo.pagination.next, klaviyo.pagination.link) == ("links.next", "absolute")
    assert "API_KEY" in klaviyo.methods
    with pytest.raises(errors.UnknownApp):
        kg.apps.get("no-such-app")


def test_api_calls_with_params_json_headers_and_connection(
    kg: Keygate, sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    connection = _klaviyo_key_connection(sandboxed, tenant)
    email = f"sdk-{uuid.uuid4().hex[:8]}@example.com"
    body = {"data": {"type": "profile", "attributes": {"email": email, "first_name": "Ada"}}}
    created = kg.api.post("/klaviyo/api/profiles", json=body, connection=connection)
    assert created.status_code == 201
    assert created.headers["keygate-connection"] == connection
    profile_id = created.json()["data"]["id"]

    patch = {"data": {"type": "profile", "id": profile_id, "attributes": {"last_name": "L"}}}
    patched = kg.api.patch(f"/klaviyo/api/profiles/{profile_id}", json=patch)
    assert patched.json()["data"]["attributes"]["last_name"] == "L"

    found = kg.api.get(
        "/klaviyo/api/profiles",
        params={"filter": f'equals(email,"{email}")', "page[size]": 5},
        headers={"revision": "2026-01-15"},
    ).json()
    assert [p["id"] for p in found["data"]] == [profile_id]


def test_paginate_klaviyo_pages_and_items(
    kg: Keygate, sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    _klaviyo_key_connection(sandboxed, tenant)
    tag = uuid.uuid4().hex[:8]
    emails = [f"pg-{tag}-{n}@example.com" for n in range(5)]
    for email in emails:
        profile = {"data": {"type": "profile", "attributes": {"email": email}}}
        kg.api.post("/klaviyo/api/profiles", json=profile)
    params = {"filter": "any(email,[" + ",".join(f'"{e}"' for e in emails) + "])", "page[size]": 2}

    pages = list(kg.api.paginate("/klaviyo/api/profiles", params=params))
    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    items = list(kg.api.paginate("/klaviyo/api/profiles", params=params, items=True))
    assert sorted(item["attributes"]["email"] for item in items) == sorted(emails)
    assert len(list(kg.api.paginate("/klaviyo/api/profiles", params=params, max_pages=2))) == 2


def test_paginate_constant_contact_relative_links(
    kg: Keygate, sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    sandboxed.oauth_connection(tenant, "constant-contact")
    _cc_contacts(kg, 5)
    everything = kg.api.get("/constant-contact/v3/contacts", params={"limit": 500}).json()
    expected = [contact["contact_id"] for contact in everything["contacts"]]
    assert len(expected) > 3  # the sandbox's demo data, enough for several pages of 2

    pages = list(kg.api.paginate("/constant-contact/v3/contacts", params={"limit": 2}))
    assert len(pages) == (len(expected) + 1) // 2
    items = kg.api.paginate("/constant-contact/v3/contacts", params={"limit": 2}, items="contacts")
    assert [contact["contact_id"] for contact in items] == expected
    # Constant Contact's pages name their list per endpoint: items=True says to name it.
    with pytest.raises(ValueError, match="items="):
        next(kg.api.paginate("/constant-contact/v3/contacts", items=True))


def test_errors_map_to_one_class_per_code(
    kg: Keygate, sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    with pytest.raises(errors.NoActiveConnection) as none:
        kg.api.get("/klaviyo/api/profiles")
    assert none.value.status == 400
    assert "POST /connections" in none.value.message
    assert none.value.request_id

    with (
        Keygate("kg_not_a_real_key", base_url=sandboxed.keygate.url) as stranger,
        pytest.raises(errors.InvalidApiKey) as refused,
    ):
        stranger.apps.list()
    assert refused.value.status == 401
    assert "kg_not_a_real_key" not in str(refused.value)

    with pytest.raises(errors.UnknownApp):
        kg.api.get("/no-such-app/x")
    with pytest.raises(errors.ConnectionNotFound):
        kg.api.get("/klaviyo/api/profiles", connection=str(uuid.uuid4()))
    with pytest.raises(errors.InvalidPath):
        kg.api.get("/klaviyo/api/%2e%2e/x")
    with pytest.raises(errors.UnsupportedMethod):
        kg.connections.create("constant-contact", method="API_KEY")

    # The provider's own 404 passes through: an UpstreamError with its status, body and id.
    _klaviyo_key_connection(sandboxed, tenant)
    with pytest.raises(errors.UpstreamError) as upstream:
        kg.api.get("/klaviyo/api/profiles/no-such-profile")
    assert upstream.value.status == 404
    assert upstream.value.body["errors"][0]["status"] == 404
    assert upstream.value.request_id
    assert not isinstance(upstream.value, errors.GatewayError)


def test_reauthorization_required_carries_the_reconnect_url(
    kg: Keygate, sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    conn_id, tokens = sandboxed.minted_connection(tenant, "constant-contact", expires_in=-10)
    # Someone else spends the rotating refresh token first: Keygate's refresh gets invalid_grant.
    spent = httpx.post(
        f"{sandboxed.cc.url}/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert spent.status_code == 200
    with pytest.raises(errors.ReauthorizationRequired) as dead:
        kg.api.get("/constant-contact/v3/contacts", connection=conn_id)
    assert dead.value.status == 424
    assert dead.value.reconnect_url
    assert dead.value.reconnect_url.startswith(f"{kg.base_url}/connect?session_token=")
    assert dead.value.connection_id == conn_id
    assert isinstance(dead.value, errors.ConnectionStateError)


def test_async_client_the_same_calls(
    kg: Keygate, sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    _klaviyo_key_connection(sandboxed, tenant)
    sandboxed.oauth_connection(tenant, "constant-contact")
    _cc_contacts(kg, 5)

    async def run() -> None:
        async with AsyncKeygate(tenant.key, base_url=sandboxed.keygate.url) as kg:
            assert {c.app for c in await kg.connections.list()} == {"klaviyo", "constant-contact"}
            created = await kg.connections.create("klaviyo", method="API_KEY")
            assert created.url is not None
            person = _submit_key_later(created.url, 0.3)
            active = await kg.connections.wait(created.id, timeout=60, interval=0.2)
            person.join(30)
            assert active.status == "ACTIVE"
            assert (await kg.connections.delete(created.id)).status == "DELETED"
            assert (await kg.apps.get("constant-contact")).pagination is not None
            answer = await kg.api.get("/klaviyo/api/accounts")
            assert answer.json()["data"][0]["type"] == "account"
            contacts = [
                c
                async for c in kg.api.paginate(
                    "/constant-contact/v3/contacts", params={"limit": 2}, items="contacts"
                )
            ]
            assert len(contacts) >= 5
            with pytest.raises(errors.UpstreamError):
                await kg.api.get("/klaviyo/api/profiles/no-such-profile")

    asyncio.run(run())


def test_no_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYGATE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="KEYGATE_API_KEY"):
        Keygate(base_url="http://127.0.0.1:1")
