"""The OAuth connect flow against the provider sandboxes, over real HTTP, hop by hop.

Every test drives the flow the way a browser does (see `oauth_dance`), and checks what a person
sees (the page) and what a caller sees (the connection over the API, a proxied call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import update

from keygate.connect.tokens import mint
from keygate.crypto import Cipher, generate_key, load_master_key
from keygate.oauth.protocol import s256_challenge
from keygate.settings import Settings
from keygate.store.schema import ConnectSession
from tests.connect.oauth_dance import (
    Browser,
    create,
    credentials,
    fetch,
    pending_session,
    proxied_data,
    query,
    session_token,
)
from tests.support.harness import Tenant
from tests.support.sandboxes import CLIENT_SECRET, SandboxedKeygate

APPS = ["klaviyo", "constant-contact"]
CATALOG_SCOPES = {
    "klaviyo": "accounts:read profiles:read profiles:write lists:read lists:write segments:read "
    "campaigns:read flows:read events:read metrics:read templates:read tags:read",
    "constant-contact": "account_read account_update contact_data campaign_data offline_access",
}


@pytest.fixture
def tenant(sandboxed: SandboxedKeygate) -> Iterator[Tenant]:
    """A fresh workspace of the sandboxed Keygate."""
    made = sandboxed.tenant()
    yield made
    made.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A person's browser with an empty cookie jar."""
    made = Browser()
    yield made
    made.close()


def stored_verifier(sandboxed: SandboxedKeygate, connection_id: str) -> str:
    """The PKCE verifier Keygate keeps (encrypted) for the pending authorization."""
    row = pending_session(sandboxed, connection_id)
    assert row.verifier_ciphertext is not None
    cipher = sandboxed.keygate.runtime.cipher
    return cipher.decrypt(row.verifier_ciphertext, bound_to=f"pkce:{connection_id}").decode()


def replace_verifier(sandboxed: SandboxedKeygate, connection_id: str, verifier: str) -> None:
    """Tamper with the stored verifier, as a bug or a corrupted row would."""
    runtime = sandboxed.keygate.runtime
    row = pending_session(sandboxed, connection_id)
    sealed = runtime.cipher.encrypt(verifier.encode(), bound_to=f"pkce:{connection_id}")

    async def write() -> None:
        async with runtime.db.sessions() as session, session.begin():
            await session.execute(
                update(ConnectSession)
                .where(ConnectSession.nonce == row.nonce)
                .values(verifier_ciphertext=sealed)
            )

    sandboxed.keygate.run(write())


def heading(page: str) -> str:
    """The h1 of a Keygate page."""
    return page.split('<h1 id="heading">', 1)[1].split("</h1>", 1)[0]


@pytest.mark.parametrize("app", APPS)
def test_approved_flow_sends_s256_pair_the_sandbox_accepts(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser, app: str
) -> None:
    conn = create(tenant, app)
    authorize = browser.continue_from(conn["url"])
    params = query(authorize)
    assert params["code_challenge_method"] == "S256"
    verifier = stored_verifier(sandboxed, conn["connection_id"])
    assert params["code_challenge"] == s256_challenge(verifier)
    assert params["redirect_uri"] == f"{sandboxed.keygate.url}/oauth/callback"
    assert params["response_type"] == "code"
    assert params["state"]

    done = browser.get(browser.consent(authorize))
    assert done.status_code == 200
    assert "is connected" in heading(done.text)
    assert "close this tab" in done.text
    assert fetch(tenant, conn["connection_id"])["status"] == "ACTIVE"
    proxied_data(tenant, app, conn["connection_id"])


@pytest.mark.parametrize("app", APPS)
def test_wrong_verifier_is_rejected_by_the_provider(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser, app: str
) -> None:
    conn = create(tenant, app)
    authorize = browser.continue_from(conn["url"])
    replace_verifier(sandboxed, conn["connection_id"], "x" * 43)

    page = browser.get(browser.consent(authorize))
    assert page.status_code == 400
    assert "Code challenge failed" in page.text
    failed = fetch(tenant, conn["connection_id"])
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "oauth_invalid_grant"
    assert credentials(sandboxed, conn["connection_id"]) is None


def test_replayed_callback_is_refused_without_changes(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    conn = create(tenant, "klaviyo")
    callback = browser.consent(browser.continue_from(conn["url"]))
    assert browser.get(callback).status_code == 200
    before = fetch(tenant, conn["connection_id"])
    stored = credentials(sandboxed, conn["connection_id"])
    assert stored is not None
    token_calls = sandboxed.klaviyo.state.stats.token_requests["authorization_code"]

    replay = browser.get(callback)
    assert replay.status_code == 400
    assert heading(replay.text) == "This authorization is not valid"
    assert "Traceback" not in replay.text
    after = fetch(tenant, conn["connection_id"])
    assert after["status"] == "ACTIVE"
    assert after["last_updated_time"] == before["last_updated_time"]
    again = credentials(sandboxed, conn["connection_id"])
    assert again is not None
    assert again.version == stored.version
    assert sandboxed.klaviyo.state.stats.token_requests["authorization_code"] == token_calls


def test_replayed_denial_is_refused(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    conn = create(tenant, "constant-contact")
    callback = browser.consent(browser.continue_from(conn["url"]), "deny")
    assert browser.get(callback).status_code == 400
    failed = fetch(tenant, conn["connection_id"])
    assert failed["status"] == "FAILED"
    replay = browser.get(callback)
    assert replay.status_code == 400
    assert heading(replay.text) == "This authorization is not valid"
    after = fetch(tenant, conn["connection_id"])
    assert after["error"] == failed["error"]
    assert after["last_updated_time"] == failed["last_updated_time"]


@pytest.mark.parametrize("app", APPS)
def test_another_sessions_state_is_refused(
    sandboxed: SandboxedKeygate, tenant: Tenant, app: str
) -> None:
    victim, attacker = Browser(), Browser()
    mine = create(tenant, app)
    theirs = create(tenant, app)
    # The attacker authorizes their own connection but stops before the callback, then
    # gets the victim's browser to open that callback.
    foreign = attacker.consent(attacker.continue_from(theirs["url"]))
    victim.continue_from(mine["url"])
    refused = victim.get(foreign)
    assert refused.status_code == 400
    assert heading(refused.text) == "This authorization did not start in this browser"
    assert fetch(tenant, mine["connection_id"])["status"] == "PENDING"
    assert fetch(tenant, theirs["connection_id"])["status"] == "PENDING"
    # Nothing was claimed: the browser that started it can still finish.
    assert attacker.get(foreign).status_code == 200
    assert fetch(tenant, theirs["connection_id"])["status"] == "ACTIVE"
    assert fetch(tenant, mine["connection_id"])["status"] == "PENDING"
    victim.close()
    attacker.close()


def test_code_swapped_onto_another_state_activates_nothing(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    first = create(tenant, "klaviyo")
    second = create(tenant, "klaviyo")
    first_callback = browser.consent(browser.continue_from(first["url"]))
    second_authorize = browser.continue_from(second["url"])
    swapped = (
        f"{sandboxed.keygate.url}/oauth/callback?code={query(first_callback)['code']}"
        f"&state={query(second_authorize)['state']}"
    )
    page = browser.get(swapped)
    assert page.status_code == 400
    # PKCE binds the code to the first authorization's verifier: the swap cannot succeed.
    assert fetch(tenant, second["connection_id"])["status"] != "ACTIVE"
    assert credentials(sandboxed, second["connection_id"]) is None
    assert fetch(tenant, first["connection_id"])["status"] == "PENDING"


def test_expired_session_token_shows_the_expiry_page(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    conn = create(tenant, "klaviyo")
    ttl = sandboxed.keygate.settings.session_ttl_seconds
    old = mint(sandboxed.keygate.runtime.cipher, conn["connection_id"], now=time.time() - ttl - 5)
    url = f"{sandboxed.keygate.url}/connect?session_token={old}"
    page = browser.get(url)
    assert page.status_code == 410
    assert heading(page.text) == "This link has expired"
    posted = browser.post(f"{sandboxed.keygate.url}/connect", {"session_token": old})
    assert posted.status_code == 410
    assert heading(posted.text) == "This link has expired"
    assert fetch(tenant, conn["connection_id"])["status"] == "PENDING"
    # Just inside the lifetime still works.
    fresh = mint(
        sandboxed.keygate.runtime.cipher, conn["connection_id"], now=time.time() - ttl + 60
    )
    assert browser.get(f"{sandboxed.keygate.url}/connect?session_token={fresh}").status_code == 200


def test_link_opened_just_before_expiry_can_still_finish_at_the_provider(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    conn = create(tenant, "klaviyo")
    ttl = sandboxed.keygate.settings.session_ttl_seconds
    cipher = sandboxed.keygate.runtime.cipher
    almost = mint(cipher, conn["connection_id"], now=time.time() - ttl + 2)
    authorize = browser.continue_from(f"{sandboxed.keygate.url}/connect?session_token={almost}")
    time.sleep(3)  # the link is now expired; the person is still on the consent page
    page = browser.get(browser.consent(authorize))
    assert page.status_code == 200, page.text
    assert fetch(tenant, conn["connection_id"])["status"] == "ACTIVE"


def test_used_session_token_shows_the_already_used_page(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    conn = create(tenant, "constant-contact")
    browser.continue_from(conn["url"])
    again = browser.get(conn["url"])
    assert again.status_code == 410
    assert heading(again.text) == "This link was already used"
    posted = browser.post(
        f"{sandboxed.keygate.url}/connect", {"session_token": session_token(conn["url"])}
    )
    assert posted.status_code == 410
    assert heading(posted.text) == "This link was already used"
    assert fetch(tenant, conn["connection_id"])["status"] == "PENDING"


def test_forged_and_garbled_tokens_show_the_invalid_page(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    conn = create(tenant, "klaviyo")
    good = session_token(conn["url"])
    other_key = Cipher(load_master_key(Settings(encryption_key=generate_key())))
    flipped = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for token in [
        "",
        "garbage",
        good[:-4],
        flipped,
        good + "AAAA",
        "%00%ff",
        "x" * 5000,
        mint(other_key, conn["connection_id"]),
    ]:
        page = browser.get(f"{sandboxed.keygate.url}/connect?session_token={token}")
        assert page.status_code == 400, token
        assert heading(page.text) == "This link is not valid"
        assert "Traceback" not in page.text
    no_token = browser.get(f"{sandboxed.keygate.url}/connect")
    assert no_token.status_code == 400
    assert heading(no_token.text) == "This link is not valid"
    assert fetch(tenant, conn["connection_id"])["status"] == "PENDING"


def test_missing_code_or_state_shows_a_clear_page(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser
) -> None:
    conn = create(tenant, "klaviyo")
    authorize = browser.continue_from(conn["url"])
    callback = f"{sandboxed.keygate.url}/oauth/callback"
    no_state = browser.get(callback)
    assert no_state.status_code == 400
    assert heading(no_state.text) == "Missing authorization state"
    no_code = browser.get(f"{callback}?state={query(authorize)['state']}")
    assert no_code.status_code == 400
    assert heading(no_code.text) == "No authorization code"
    assert fetch(tenant, conn["connection_id"])["status"] == "PENDING"


def test_scopes_come_from_the_catalog(tenant: Tenant, browser: Browser) -> None:
    for app, scopes in CATALOG_SCOPES.items():
        authorize = browser.continue_from(create(tenant, app)["url"])
        assert query(authorize)["scope"] == scopes


@pytest.mark.parametrize(
    ("app", "scopes"),
    [("klaviyo", ["profiles:read", "lists:read"]), ("constant-contact", ["contact_data"])],
)
def test_scopes_given_at_create_time_win(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser, app: str, scopes: list[str]
) -> None:
    conn = create(tenant, app, scopes=scopes)
    page = browser.get(conn["url"])
    assert ", ".join(scopes) in page.text
    authorize = browser.continue_from(fetch(tenant, conn["connection_id"])["url"])
    assert query(authorize)["scope"] == " ".join(scopes)
    consent = browser.get(authorize)
    for scope in scopes:
        assert f"<code>{scope}</code>" in consent.text
    for other in set(CATALOG_SCOPES[app].split()) - set(scopes):
        assert f"<code>{other}</code>" not in consent.text


@pytest.mark.parametrize("app", APPS)
def test_reauthorizing_keeps_the_id_and_replaces_the_tokens(
    sandboxed: SandboxedKeygate, tenant: Tenant, browser: Browser, app: str
) -> None:
    conn = create(tenant, app)
    conn_id = conn["connection_id"]
    assert browser.authorize(conn["url"]).status_code == 200
    first = credentials(sandboxed, conn_id)
    assert first is not None

    # ACTIVE → re-authorized through a fresh url: same id, new tokens, still proxying.
    assert browser.authorize(fetch(tenant, conn_id)["url"]).status_code == 200
    second = credentials(sandboxed, conn_id)
    assert second is not None
    assert second.values["access_token"] != first.values["access_token"]
    assert second.version == first.version + 1
    assert fetch(tenant, conn_id)["status"] == "ACTIVE"
    proxied_data(tenant, app, conn_id)

    # Denied → FAILED with the reason; then a fresh url makes it ACTIVE again, error gone.
    denied = browser.authorize(fetch(tenant, conn_id)["url"], "deny")
    assert denied.status_code == 400
    failed = fetch(tenant, conn_id)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "oauth_access_denied"
    assert browser.authorize(failed["url"]).status_code == 200
    healed = fetch(tenant, conn_id)
    assert healed["connection_id"] == conn_id
    assert healed["status"] == "ACTIVE"
    assert "error" not in healed
    third = credentials(sandboxed, conn_id)
    assert third is not None
    assert third.values["access_token"] != second.values["access_token"]
    proxied_data(tenant, app, conn_id)
    listed = tenant.http.get("/connections", params={"app": app}).json()["connections"]
    assert [c["connection_id"] for c in listed] == [conn_id]


@pytest.mark.parametrize("app", APPS)
def test_no_secret_in_pages_or_logs(
    sandboxed: SandboxedKeygate,
    tenant: Tenant,
    browser: Browser,
    app: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = create(tenant, app)
    authorize = browser.continue_from(conn["url"])
    verifier = stored_verifier(sandboxed, conn["connection_id"])
    browser.get(browser.consent(authorize))
    first = credentials(sandboxed, conn["connection_id"])
    browser.authorize(fetch(tenant, conn["connection_id"])["url"])
    proxied_data(tenant, app, conn["connection_id"])
    second = credentials(sandboxed, conn["connection_id"])
    browser.authorize(fetch(tenant, conn["connection_id"])["url"], "deny")
    assert first is not None
    assert second is not None
    secrets = [CLIENT_SECRET, verifier]
    for stored in (first, second):
        secrets += [stored.values["access_token"].reveal(), stored.values["refresh_token"].reveal()]
    seen = "\n".join(browser.pages) + "\n" + caplog.text
    assert browser.pages
    assert caplog.records
    for secret in secrets:
        assert secret not in seen
