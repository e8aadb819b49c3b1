"""The dashboard at `/ui` in a real Chromium, against the provider sandboxes.

A person signs in with an API key, connects Klaviyo (API key, on Keygate's connect page) and
Constant Contact (OAuth, through the sandbox's consent page) in a second tab and watches both
turn ACTIVE in the first without reloading it, deletes one, creates and revokes an API key.

Every dashboard tab may reach Keygate's origin only (each other request is recorded and
aborted), must cause no Content-Security-Policy violation, and every page it shows is checked
with axe-core (no serious or critical violation) and screenshotted at 1280x800 and 390x844
into `artifacts/ui/` (left behind by the run; git-ignored).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Route, expect
from standardwebhooks.webhooks import Webhook

from keygate.sandbox.config import DEFAULT_PRIVATE_KEY
from tests.browser.conftest import Chromium
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate
from tests.support.servers import ServerThread

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "ui"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
_axe = Axe()


@dataclass
class Guarded:
    """A dashboard tab: its requests kept on Keygate's origin, its pages checked and shot."""

    page: Page
    origin: str
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    shots: list[str] = field(default_factory=list)

    def attach(self) -> Guarded:
        """Abort and record every request off Keygate's origin; record console errors."""

        def route(request: Route) -> None:
            url = request.request.url
            if url == self.origin or url.startswith(self.origin + "/"):
                request.continue_()
            else:
                self.blocked.append(url)
                request.abort()

        self.page.route("**/*", route)
        self.page.add_init_script(RECORD_VIOLATIONS)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        return self

    def _console(self, message: ConsoleMessage) -> None:
        # A page answered 401 or 404 on purpose is logged as a failed load; the steps check
        # those statuses themselves.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def check(self, name: str) -> None:
        """This page: no policy violation, axe clean (serious/critical), shot at both sizes."""
        violations = self.page.evaluate("window.__violations")
        assert violations == [], f"{name}: the Content-Security-Policy blocked {violations}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for size, (width, height) in SIZES.items():
            self.page.set_viewport_size({"width": width, "height": height})
            found = _axe.run(self.page).response["violations"]
            bad = [
                f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
                for v in found
                if v["impact"] in ("serious", "critical")
            ]
            assert bad == [], f"{name} at {size}: accessibility violations {bad}"
            shot = ARTIFACTS / f"{name}-{size}.png"
            self.page.screenshot(path=str(shot), full_page=True)
            self.shots.append(shot.name)
        self.page.set_viewport_size({"width": 1280, "height": 800})

    def done(self) -> None:
        """The tab stayed on Keygate's origin and its scripts raised nothing."""
        assert self.blocked == [], "the dashboard reached off Keygate's origin"
        assert self.errors == [], f"console errors: {self.errors}"


@dataclass
class Receiver:
    """A webhook receiver on loopback: it keeps every delivery (headers, body), answers 204."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every delivery so far, its signature checked with the standardwebhooks library."""
        checker = Webhook(secret)
        return [
            {"id": headers["webhook-id"], **checker.verify(body, headers)}
            for headers, body in list(self.received)
        ]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, ServerThread]]:
    """A webhook receiver served on loopback."""
    app = Receiver()
    server = ServerThread(app, lifespan="off").start()
    yield app, server
    server.stop()


@pytest.fixture
def person(sandboxed: SandboxedKeygate, chromium: Chromium) -> Iterator[Tenant]:
    """A fresh workspace, the consent pages shown, and a browser that is signed out."""
    for app in ("klaviyo", "constant-contact"):
        sandboxed.sandbox(app).admin("config", {"auto_approve": False})
    chromium.run(lambda page: page.context.clear_cookies())
    made = sandboxed.tenant()
    yield made
    made.close()


def in_dashboard(chromium: Chromium, origin: str, step: Callable[[Guarded], Any]) -> list[str]:
    """Run one step in a guarded dashboard tab; the screenshots it took."""

    def scenario(page: Page) -> list[str]:
        guarded = Guarded(page, origin).attach()
        step(guarded)
        guarded.done()
        return guarded.shots

    return chromium.run(scenario)


def sign_in(tab: Guarded, key: str) -> None:
    """From any dashboard URL, through the sign-in page, to the connections."""
    page = tab.page
    page.goto(f"{tab.origin}/ui/connections")
    expect(page).to_have_url(f"{tab.origin}/ui/sign-in")
    expect(page.locator("h1")).to_have_text("Sign in to Keygate")
    tab.check("sign-in")
    page.fill("#api_key", "kg_wrong")
    page.click("#sign-in")
    expect(page.locator("#error")).to_contain_text("not valid")
    tab.check("sign-in-refused")
    page.fill("#api_key", key)
    page.click("#sign-in")
    expect(page).to_have_url(f"{tab.origin}/ui/connections")


def new_connection(tab: Guarded, app: str, method: str, search: str) -> str:
    """Create a connection on the new-connection page; its id (from its page's URL)."""
    page = tab.page
    page.click("#new-connection")
    expect(page.locator("h1")).to_have_text("New connection")
    # Typed at once, perhaps before the page's script runs: it applies the filter either way.
    page.fill("#app-search", search)
    others = page.locator("#app-choices .choice:not([hidden])")
    expect(others).to_have_count(1)
    page.check(f"#app-{app}")
    # Only the app's methods are offered.
    expect(page.locator("#method-BASIC")).to_be_hidden()
    page.check(f"#method-{method}")
    page.fill("#metadata", "customer=acme")
    page.click("#create-connection")
    expect(page.locator("#flash")).to_contain_text("Connection created")
    found = re.search(r"/ui/connections/([0-9a-f-]{36})", page.url)
    assert found, page.url
    return found.group(1)


def in_new_tab(context: BrowserContext, open_it: Callable[[], None]) -> Page:
    """The tab a click opens (the connect page opens in a tab of its own)."""
    with context.expect_page() as opened:
        open_it()
    tab = opened.value
    tab.wait_for_load_state()
    return tab


def status_of(page: Page, connection_id: str) -> Any:
    """The status badge of a connection on the page."""
    return page.locator(f"#status-{connection_id}")


def test_a_person_manages_connections_and_keys(
    chromium: Chromium,
    sandboxed: SandboxedKeygate,
    person: Tenant,
    receiver: tuple[Receiver, ServerThread],
) -> None:
    origin = sandboxed.keygate.url
    ids: dict[str, str] = {}
    made_key: dict[str, str] = {}
    hook: dict[str, str] = {}

    def connect_klaviyo(tab: Guarded) -> None:
        page = tab.page
        sign_in(tab, person.key)
        expect(page.locator("#no-connections")).to_be_visible()
        tab.check("connections-empty")
        # A webhook first, so that every change below is delivered to it.
        page.goto(f"{origin}/ui/webhooks")
        expect(page.locator("#no-endpoints")).to_be_visible()
        tab.check("webhooks-empty")
        page.fill("#webhook-url", "ftp://nowhere.example/")
        page.click("#create-webhook")
        expect(page.locator("#error")).to_contain_text("http:// or https://")
        page.fill("#webhook-url", f"{receiver[1].url}/keygate-events")
        page.click("#create-webhook")
        expect(page.locator("#new-secret-card")).to_contain_text("only time it is shown")
        hook["secret"] = page.input_value("#new-secret")
        assert hook["secret"].startswith("whsec_")
        tab.check("webhook-created")
        page.click("#open-created")
        found = re.search(r"/ui/webhooks/(wh_[0-9a-f]{32})", page.url)
        assert found, page.url
        hook["id"] = found.group(1)
        page.goto(f"{origin}/ui/connections")
        page.click("#new-connection")
        tab.check("new-connection")
        page.goto(f"{origin}/ui/connections")
        ids["klaviyo"] = new_connection(tab, "klaviyo", "API_KEY", "klav")
        expect(status_of(page, ids["klaviyo"])).to_have_text("PENDING")
        tab.check("connection-pending")
        connect = in_new_tab(page.context, lambda: page.click("#open-link"))
        expect(connect.locator("h1")).to_have_text("Connect Klaviyo")
        connect.fill("#api_key", DEFAULT_PRIVATE_KEY)
        connect.click("#continue")
        expect(connect.locator("#heading")).to_have_text("Klaviyo is connected")
        connect.close()
        # No reload: htmx asks for the badge until the status changes.
        expect(status_of(page, ids["klaviyo"])).to_have_text("ACTIVE", timeout=20_000)
        # Then htmx reloads the page, which shows what else changed.
        expect(page.locator("#link-heading")).to_have_text("Re-authorize link")
        expect(page.locator("#flash")).to_have_count(0)
        tab.check("connection-active")

    in_dashboard(chromium, origin, connect_klaviyo)

    def connect_constant_contact(tab: Guarded) -> None:
        page = tab.page
        page.goto(f"{origin}/ui/connections")
        ids["cc"] = new_connection(tab, "constant-contact", "OAUTH2", "constant")
        link = page.input_value("#connect-link")
        assert link.startswith(f"{origin}/connect?session_token=")
        # Watch the table instead: it refreshes itself while a connection is PENDING.
        page.goto(f"{origin}/ui/connections")
        expect(status_of(page, ids["cc"])).to_have_text("PENDING")
        expect(status_of(page, ids["klaviyo"])).to_have_text("ACTIVE")
        tab.check("connections-pending")
        consent = page.context.new_page()
        consent.goto(link)
        consent.click("#continue")
        consent.wait_for_url(re.compile("^" + re.escape(sandboxed.cc.url) + "/"))
        expect(consent.locator("#client-name")).to_have_text("Keygate")
        consent.click("#approve")
        expect(consent.locator("#heading")).to_have_text("Constant Contact is connected")
        consent.close()
        expect(status_of(page, ids["cc"])).to_have_text("ACTIVE", timeout=20_000)
        expires = page.locator(f"#row-{ids['cc']} td[data-label='Token expires']")
        expect(expires).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
        tab.check("connections")

    in_dashboard(chromium, origin, connect_constant_contact)

    # Gateway calls through both connections.
    for app, path in (
        ("klaviyo", "/klaviyo/api/accounts"),
        ("cc", "/constant-contact/v3/account/summary"),
    ):
        answer = person.http.get(path, headers={"Maton-Connection": ids[app]})
        assert answer.status_code == 200, answer.text

    def see_the_record(tab: Guarded) -> None:
        page = tab.page
        page.goto(f"{origin}/ui/connections/{ids['klaviyo']}")
        requests = page.locator("#requests tbody tr")
        for _ in range(40):  # the log is written in batches, off the request path
            if requests.count():
                break
            page.wait_for_timeout(250)
            page.reload()
        expect(requests).to_have_count(1)
        expect(requests.first).to_contain_text("/klaviyo/api/accounts")
        expect(requests.first).to_contain_text("200")
        events = page.locator("#events")
        expect(events).to_contain_text("connection.created")
        expect(events).to_contain_text("connection.activated")
        expect(events).to_contain_text(f"key:{person.key[:11]}")
        expect(page.locator("#last-used")).to_have_text(
            re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")
        )
        tab.check("connection-with-record")
        page.goto(f"{origin}/ui/logs")
        expect(page.locator("#requests tbody tr")).to_have_count(2)
        tab.check("request-log")
        page.select_option("#f-app", "constant-contact")
        page.click("#apply-filters")
        expect(page.locator("#requests tbody tr")).to_have_count(1)
        expect(page.locator("#requests")).to_contain_text("/constant-contact/v3/account/summary")
        page.goto(f"{origin}/ui/events")
        tab.check("events")
        page.select_option("#f-type", "connection.activated")
        page.click("#apply-filters")
        expect(page.locator("#events tbody tr")).to_have_count(2)
        # The webhook's deliveries appear on its page as they are made (htmx refreshes them).
        page.goto(f"{origin}/ui/webhooks/{hook['id']}")
        delivered = page.locator("#deliveries tbody tr", has_text="delivered")
        expect(delivered).to_have_count(4, timeout=20_000)
        tab.check("webhook-deliveries")
        first = page.locator("#deliveries tbody tr").last
        delivery_id = first.get_attribute("id")
        assert delivery_id
        hook["redelivered"] = delivery_id.removeprefix("delivery-")
        first.locator("button.redeliver").click()
        expect(page.locator("#flash")).to_contain_text("queued again")

    in_dashboard(chromium, origin, see_the_record)
    deadline = time.monotonic() + 20
    while len(receiver[0].received) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    deliveries = receiver[0].verified(hook["secret"])
    kinds = [d["type"] for d in deliveries]
    assert kinds[:4] == [
        "connection.created",
        "connection.activated",
        "connection.created",
        "connection.activated",
    ]
    assert [d["id"] for d in deliveries].count(hook["redelivered"]) == 2

    def filter_and_delete(tab: Guarded) -> None:
        page = tab.page
        page.goto(f"{origin}/ui/connections")
        page.select_option("#filter-app", "klaviyo")
        page.select_option("#filter-status", "ACTIVE")
        page.click("#apply-filters")
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator(f"#row-{ids['klaviyo']}")).to_be_visible()
        tab.check("connections-filtered")
        page.goto(f"{origin}/ui/connections")
        page.fill("#filter-q", ids["cc"][:13])
        page.press("#filter-q", "Enter")
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator(f"#row-{ids['cc']}")).to_be_visible()
        page.goto(f"{origin}/ui/connections")
        page.click(f"#row-{ids['klaviyo']} a")
        expect(page.locator("#connection-id")).to_have_text(ids["klaviyo"])
        expect(page.locator("#metadata")).to_contain_text("acme")
        page.click("#delete-start")
        expect(page.locator("#delete-confirm")).to_be_visible()
        tab.check("connection-delete-confirm")
        page.click("#delete-confirm")
        expect(page.locator("#flash")).to_have_text("The connection was deleted.")
        expect(page.locator(f"#row-{ids['klaviyo']}")).to_have_count(0)
        expect(page.locator(f"#row-{ids['cc']}")).to_be_visible()
        tab.check("connections-after-delete")
        page.goto(f"{origin}/ui/connections/{ids['klaviyo']}")
        expect(page.locator("#heading")).to_have_text("Not found")
        tab.check("not-found")

    in_dashboard(chromium, origin, filter_and_delete)
    gone = person.http.get(f"/connections/{ids['klaviyo']}")
    assert gone.status_code == 404

    def keys_and_apps(tab: Guarded) -> None:
        page = tab.page
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
        page.goto(f"{origin}/ui/keys")
        tab.check("keys")
        page.fill("#key-name", "deploy bot")
        page.click("#create-key")
        expect(page.locator("#new-key-card")).to_contain_text("only time it is shown")
        made_key["key"] = page.input_value("#new-key")
        assert made_key["key"].startswith("kg_")
        page.click("#copy-key")
        expect(page.locator("#copy-key")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == made_key["key"]
        tab.check("key-created")
        # A reload does not show it again.
        page.goto(f"{origin}/ui/keys")
        assert made_key["key"] not in page.content()
        row = page.locator(f"#key-{made_key['key'][:11]}")
        expect(row).to_contain_text("deploy bot")
        row.locator("summary").click()
        tab.check("key-revoke-confirm")
        row.locator("button.destructive").click()
        expect(page.locator("#flash")).to_have_text("The key was revoked.")
        expect(page.locator(f"#key-{made_key['key'][:11]}")).to_contain_text("revoked")
        # A form whose CSRF token was tampered with is refused, and nothing changes.
        page.goto(f"{origin}/ui/keys")
        page.fill("#key-name", "forged")
        page.evaluate(
            "document.querySelector('form[action=\"/ui/keys\"] [name=csrf_token]').value = 'x'"
        )
        page.click("#create-key")
        expect(page.locator("#heading")).to_have_text("This request was refused")
        tab.check("refused")
        page.goto(f"{origin}/ui/keys")
        expect(page.locator("tbody tr", has_text="forged")).to_have_count(0)
        page.goto(f"{origin}/ui/apps")
        expect(page.locator("#app-klaviyo")).to_contain_text("client configured")
        expect(page.locator("#app-constant-contact")).to_contain_text("OAUTH2")
        tab.check("apps")

    in_dashboard(chromium, origin, keys_and_apps)
    revoked = httpx.get(
        f"{origin}/connections", headers={"Authorization": f"Bearer {made_key['key']}"}
    )
    assert revoked.status_code == 401

    def sign_out(tab: Guarded) -> None:
        page = tab.page
        page.goto(f"{origin}/ui/connections")
        page.click("#sign-out")
        expect(page).to_have_url(f"{origin}/ui/sign-in")
        page.goto(f"{origin}/ui/keys")
        expect(page).to_have_url(f"{origin}/ui/sign-in")

    in_dashboard(chromium, origin, sign_out)


def test_the_dashboard_works_with_the_keyboard(
    chromium: Chromium, sandboxed: SandboxedKeygate, person: Tenant
) -> None:
    origin = sandboxed.keygate.url

    def tab_to(page: Page, selector: str, limit: int = 30) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    def by_keyboard(tab: Guarded) -> None:
        page = tab.page
        page.goto(f"{origin}/ui/sign-in")
        tab_to(page, "#api_key")
        page.keyboard.type(person.key)
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{origin}/ui/connections")
        tab_to(page, "a[href='/ui/connections/new']")
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text("New connection")
        tab_to(page, "#app-search")
        page.keyboard.type("constant")
        tab_to(page, "#app-constant-contact")
        page.keyboard.press("Space")
        tab_to(page, "#create-connection")
        page.keyboard.press("Enter")
        expect(page.locator("#flash")).to_contain_text("Connection created")
        tab_to(page, "#delete-start")
        page.keyboard.press("Enter")
        tab_to(page, "#delete-confirm")
        page.keyboard.press("Enter")
        expect(page.locator("#flash")).to_have_text("The connection was deleted.")

    in_dashboard(chromium, origin, by_keyboard)
