"""The API-key connect page against the Klaviyo sandbox, over real HTTP, as a person uses it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keygate.sandbox.config import DEFAULT_PRIVATE_KEY
from keygate.sandbox.klaviyo.store import ACCOUNT_ID
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate

WRONG_KEY = "pk_wrong_but_well_formed_0123"


@pytest.fixture
def tenant(sandboxed: SandboxedKeygate) -> Iterator[Tenant]:
    """A fresh workspace and key on the sandboxed Keygate."""
    made = sandboxed.tenant()
    yield made
    made.close()


def create_api_key_connection(tenant: Tenant) -> dict[str, Any]:
    """A PENDING Klaviyo API_KEY connection."""
    response = tenant.http.post("/connections", json={"app": "klaviyo", "method": "API_KEY"})
    assert response.status_code == 201, response.text
    connection: dict[str, Any] = response.json()["connection"]
    assert connection["status"] == "PENDING"
    return connection


def status_of(tenant: Tenant, connection_id: str) -> str:
    """The connection's status as the control plane reports it."""
    status: str = tenant.http.get(f"/connections/{connection_id}").json()["connection"]["status"]
    return status


def submit(browser: httpx.Client, page: httpx.Response, api_key: str) -> httpx.Response:
    """Fill in the form of a connect page and post it, as a browser would."""
    token = re.search(r'name="session_token" value="([^"]+)"', page.text)
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert token, page.text
    assert action, page.text
    return browser.post(action.group(1), data={"session_token": token.group(1), "api_key": api_key})


def test_wrong_key_then_right_key_then_proxied_call(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    connection = create_api_key_connection(tenant)
    conn_id = connection["connection_id"]
    with httpx.Client(base_url=sandboxed.keygate.url, timeout=30) as browser:
        page = browser.get(connection["url"])
        assert page.status_code == 200
        assert "Connect Klaviyo" in page.text
        assert 'name="api_key"' in page.text
        assert 'type="password"' in page.text

        asked = len(sandboxed.keygate.recorder.urls)
        wrong = submit(browser, page, WRONG_KEY)
        assert wrong.status_code == 400
        assert "Klaviyo rejected this key (401)" in wrong.text
        assert WRONG_KEY not in wrong.text  # the form is shown again, empty
        assert sandboxed.keygate.recorder.urls[asked:] == [f"{sandboxed.klaviyo.url}/api/accounts"]
        assert status_of(tenant, conn_id) == "PENDING"

        right = submit(browser, wrong, DEFAULT_PRIVATE_KEY)
        assert right.status_code == 200, right.text
        assert "Klaviyo is connected" in right.text
        assert DEFAULT_PRIVATE_KEY not in right.text
        assert status_of(tenant, conn_id) == "ACTIVE"

        # The sandbox accepts only `Authorization: Klaviyo-API-Key <a known private key>` (a
        # Bearer of the same key is refused), so its data proves the key was injected.
        proxied = tenant.http.get("/klaviyo/api/accounts")
        assert proxied.status_code == 200, proxied.text
        assert proxied.headers["keygate-connection"] == conn_id
        assert [a["id"] for a in proxied.json()["data"]] == [ACCOUNT_ID]

        again = browser.get(connection["url"])
        assert again.status_code == 410
        assert "This link was already used" in again.text
        replay = submit(browser, page, WRONG_KEY)
        assert replay.status_code == 410
        assert status_of(tenant, conn_id) == "ACTIVE"


def test_malformed_key_is_refused_without_asking_the_provider(
    sandboxed: SandboxedKeygate, tenant: Tenant
) -> None:
    connection = create_api_key_connection(tenant)
    with httpx.Client(base_url=sandboxed.keygate.url, timeout=30) as browser:
        page = browser.get(connection["url"])
        asked = len(sandboxed.keygate.recorder.urls)
        for bad in ("sk_not_a_private_key", "pk_short", "pk_has spaces inside"):
            answer = submit(browser, page, bad)
            assert answer.status_code == 400
            assert "That does not look like a Private API key." in answer.text
        empty = submit(browser, page, "   ")
        assert empty.status_code == 400
        assert "Private API key is required." in empty.text
        assert sandboxed.keygate.recorder.urls[asked:] == []
    assert status_of(tenant, connection["connection_id"]) == "PENDING"


def test_a_bad_or_missing_session_token_shows_a_clear_page(sandboxed: SandboxedKeygate) -> None:
    with httpx.Client(base_url=sandboxed.keygate.url, timeout=30) as browser:
        for query in ("", "?session_token=", "?session_token=AAAA", "?session_token=%00%ff"):
            page = browser.get(f"/connect{query}")
            assert page.status_code == 400
            assert "This link is not valid" in page.text
            assert "Traceback" not in page.text
