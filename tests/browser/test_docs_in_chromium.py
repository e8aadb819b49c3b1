"""`/docs` in a real Chromium that may reach only loopback: Swagger UI renders from Keygate's own
assets, under its Content-Security-Policy, and "Try it out" works with a Keygate key.

Every request the tab makes off loopback is recorded and aborted, so a page that needs a CDN
(or phones home for a validator badge or a favicon) fails here as it would offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Page, Route, expect

from tests.browser.conftest import Chromium
from tests.support.harness import KeygateHarness, Tenant

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Chromium reports a CSP violation as an event; the page keeps them for the test to read.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@dataclass
class Offline:
    """What a tab tried to fetch off loopback, and what its console said."""

    blocked: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        """Abort and record every request that would leave loopback; record the console."""

        def route(request: Route) -> None:
            url = request.request.url
            if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
                request.continue_()
            else:
                self.blocked.append(url)
                request.abort()

        page.route("**/*", route)
        page.on("console", lambda m: self._console(m))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.add_init_script(RECORD_VIOLATIONS)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")


def run_offline(
    chromium: Chromium, scenario: Callable[[Page], object]
) -> tuple[Offline, list[str]]:
    """Run a scenario in an offline tab; what it tried and the CSP violations it caused."""
    offline = Offline()

    def wrapped(page: Page) -> list[str]:
        offline.attach(page)
        scenario(page)
        violations: list[str] = page.evaluate("window.__violations")
        return violations

    return offline, chromium.run(wrapped)


def test_docs_render_offline_and_try_it_out_works(
    chromium: Chromium, keygate: KeygateHarness, tenant: Tenant
) -> None:
    created = tenant.http.post("/connections", json={"app": "klaviyo"})
    assert created.status_code == 201

    def scenario(page: Page) -> None:
        page.goto(f"{keygate.url}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Keygate")
        operations = page.locator(".swagger-ui .opblock")
        expect(operations.first).to_be_visible()
        assert operations.count() >= 9  # every operation of the document
        # Authorize with the key, by the document's security scheme.
        page.click(".swagger-ui .btn.authorize")
        page.fill(".swagger-ui .auth-container input", tenant.key)
        page.click(".swagger-ui .auth-btn-wrapper .authorize")
        page.click(".swagger-ui .auth-btn-wrapper .btn-done")
        listing = page.locator("#operations-connections-list_connections_connections_get")
        listing.locator(".opblock-summary").click()
        listing.locator(".try-out__btn").click()
        listing.locator(".execute").click()
        status = listing.locator(".live-responses-table tbody .response-col_status").first
        expect(status).to_have_text("200")
        expect(listing.locator(".live-responses-table .microlight").first).to_contain_text(
            created.json()["connection"]["connection_id"]
        )

    offline, violations = run_offline(chromium, scenario)
    assert offline.blocked == [], "the page reached off loopback"
    assert violations == [], "the Content-Security-Policy blocked part of the page"
    assert offline.console == []


def test_connect_page_is_styled_under_its_policy(
    chromium: Chromium, keygate: KeygateHarness, tenant: Tenant
) -> None:
    created = tenant.http.post("/connections", json={"app": "klaviyo", "method": "API_KEY"})
    url = created.json()["connection"]["url"]
    styles: dict[str, str] = {}

    def scenario(page: Page) -> None:
        page.goto(url)
        expect(page.locator("h1")).to_have_text("Connect Klaviyo")
        styles["body"] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        styles["button"] = page.evaluate(
            "getComputedStyle(document.querySelector('#continue')).backgroundColor"
        )

    offline, violations = run_offline(chromium, scenario)
    assert styles == {"body": "rgb(244, 245, 247)", "button": "rgb(36, 86, 211)"}
    assert offline.blocked == []
    assert violations == []
