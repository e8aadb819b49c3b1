"""A person connects Klaviyo and Constant Contact in a real browser, against the sandboxes.

Create a connection over the API, open its `url` in Chromium, press Continue on Keygate's page,
press Approve (or Deny) on the provider's consent page, land on Keygate's result page; then the
API and the gateway show the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Chromium
from tests.connect.oauth_dance import create, fetch
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate

DISPLAY = {"klaviyo": "Klaviyo", "constant-contact": "Constant Contact"}
APPS = list(DISPLAY)


@pytest.fixture
def tenant(sandboxed: SandboxedKeygate) -> Iterator[Tenant]:
    """A fresh workspace; both sandboxes show their consent page (no auto-approve)."""
    for app in APPS:
        sandboxed.sandbox(app).admin("config", {"auto_approve": False})
    made = sandboxed.tenant()
    yield made
    made.close()


def walk_to_consent(page: Page, sandboxed: SandboxedKeygate, app: str, url: str) -> None:
    """Open the connect url, check Keygate's page, press Continue, reach the consent page."""
    page.goto(url)
    expect(page.locator("h1")).to_have_text(f"Connect {DISPLAY[app]}")
    page.click("#continue")
    page.wait_for_url(re.compile("^" + re.escape(sandboxed.sandbox(app).url) + "/"))
    expect(page.locator("#client-name")).to_have_text("Keygate")


def proxied_sandbox_data(tenant: Tenant, app: str, connection_id: str) -> str:
    """One call through the gateway; the sandbox account's organization name."""
    headers = {"Maton-Connection": connection_id}
    if app == "klaviyo":
        response = tenant.http.get("/klaviyo/api/accounts", headers=headers)
        assert response.status_code == 200, response.text
        info = response.json()["data"][0]["attributes"]["contact_information"]
        return str(info["organization_name"])
    response = tenant.http.get("/constant-contact/v3/account/summary", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["organization_name"])


def decide_in_browser(
    page: Page, sandboxed: SandboxedKeygate, app: str, url: str, button: str
) -> tuple[str, str]:
    """Walk to the consent page, press a button; Keygate's (heading, message) afterwards."""
    walk_to_consent(page, sandboxed, app, url)
    page.click(button)
    page.wait_for_url(re.compile("^" + re.escape(sandboxed.keygate.url) + "/oauth/callback"))
    expect(page.locator("#heading")).to_be_visible()
    return page.inner_text("#heading"), page.inner_text("#message")


@pytest.mark.parametrize("app", APPS)
def test_approve_makes_the_connection_active(
    chromium: Chromium, sandboxed: SandboxedKeygate, tenant: Tenant, app: str
) -> None:
    conn = create(tenant, app)
    assert conn["status"] == "PENDING"
    heading, message = chromium.run(
        lambda page: decide_in_browser(page, sandboxed, app, conn["url"], "#approve")
    )
    assert heading == f"{DISPLAY[app]} is connected"
    assert "You may close this tab" in message
    active = fetch(tenant, conn["connection_id"])
    assert active["status"] == "ACTIVE"
    assert "error" not in active
    assert proxied_sandbox_data(tenant, app, conn["connection_id"]) == "Keygate Sandbox Store"


@pytest.mark.parametrize("app", APPS)
def test_deny_fails_the_connection_with_the_reason(
    chromium: Chromium, sandboxed: SandboxedKeygate, tenant: Tenant, app: str
) -> None:
    conn = create(tenant, app)
    heading, message = chromium.run(
        lambda page: decide_in_browser(page, sandboxed, app, conn["url"], "#deny")
    )
    reason = "The user denied the authorization request."
    assert heading == f"{DISPLAY[app]} did not authorize Keygate"
    assert reason in message
    failed = fetch(tenant, conn["connection_id"])
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "oauth_access_denied"
    assert reason in failed["error"]["message"]
    gateway = tenant.http.get(
        "/klaviyo/api/accounts" if app == "klaviyo" else "/constant-contact/v3/account/summary",
        headers={"Maton-Connection": conn["connection_id"]},
    )
    assert gateway.status_code == 400
    assert gateway.headers["keygate-error"] == "connection_not_active"


def test_a_missing_parameter_is_asked_and_the_form_submits(
    chromium: Chromium, tenant: Tenant
) -> None:
    # The parameter step's form must be allowed to post by the page's own CSP (`form-action`):
    # an HTTP client ignores the policy, a browser does not.
    conn = create(tenant, "freshdesk")

    def fill_in(page: Page) -> tuple[str, int]:
        page.goto(conn["url"])
        expect(page.locator("h1")).to_have_text("Connect Freshdesk")
        page.fill("#param-domain", "acme")
        page.click("#continue-params")
        page.wait_for_selector("input[name=api_key]", timeout=10_000)
        return page.inner_text("h1"), page.locator("input[name=api_key]").count()

    heading, fields = chromium.run(fill_in)
    assert heading == "Connect Freshdesk"
    assert fields == 1
    assert fetch(tenant, conn["connection_id"])["params"] == {"domain": "acme"}
