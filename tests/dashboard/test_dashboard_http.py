"""The dashboard's guards over real HTTP: sessions, CSRF, workspace isolation, headers."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from keygate.dashboard.render import POLICY
from keygate.dashboard.session import SESSION_COOKIE, mint_session
from keygate.store.records import Status
from tests.dashboard.signing_in import csrf_of, signed_in
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, Tenant
from tests.support.upstream import RecordingUpstream


@pytest.fixture
def other(keygate: KeygateHarness) -> Iterator[Tenant]:
    """A second workspace."""
    made = keygate.tenant()
    yield made
    made.close()


def _connection(tenant: Tenant, app: str = "klaviyo") -> str:
    created = tenant.http.post("/connections", json={"app": app, "method": "API_KEY"})
    assert created.status_code == 201, created.text
    return str(created.json()["connection"]["connection_id"])


def _pages(connection_id: str) -> list[str]:
    return [
        "/ui/connections",
        "/ui/connections?status=PENDING&app=klaviyo&q=x",
        "/ui/connections/new",
        f"/ui/connections/{connection_id}",
        f"/ui/connections/{connection_id}/status",
        "/ui/keys",
        "/ui/apps",
        "/ui/logs",
        "/ui/logs?status=4xx&app=klaviyo&since=2026-01-01T00:00",
        "/ui/events",
        "/ui/events?type=connection.created",
        "/ui/webhooks",
    ]


def test_no_page_works_without_a_session(keygate: KeygateHarness, tenant: Tenant) -> None:
    connection_id = _connection(tenant)
    forged = f"{'A' * 86}"
    with httpx.Client(base_url=keygate.url, timeout=30) as anonymous:
        for path in _pages(connection_id):
            for cookies in ({}, {SESSION_COOKIE: forged}):
                anonymous.cookies.clear()
                anonymous.cookies.update(cookies)
                answer = anonymous.get(path)
                assert answer.status_code == 303, path
                assert answer.headers["location"] == "/ui/sign-in"
                assert connection_id not in answer.text
        anonymous.cookies.clear()
        answer = anonymous.get("/ui/connections", headers={"HX-Request": "true"})
        assert answer.status_code == 401
        assert answer.headers["hx-redirect"] == "/ui/sign-in"
        for path in ("/ui/keys", f"/ui/connections/{connection_id}/delete", "/ui/connections"):
            answer = anonymous.post(path, data={"app": "klaviyo", "csrf_token": "x"})
            assert answer.status_code == 303, path
    assert tenant.http.get(f"/connections/{connection_id}").status_code == 200


def test_sign_in_gives_a_strict_cookie_without_the_key(
    keygate: KeygateHarness, tenant: Tenant
) -> None:
    with signed_in(keygate.url, tenant.key) as (client, csrf):
        # The set-cookie of the sign-in itself, replayed to read its attributes.
        with httpx.Client(base_url=keygate.url, timeout=30) as fresh:
            form = fresh.get("/ui/sign-in")
            answer = fresh.post(
                "/ui/sign-in", data={"api_key": tenant.key, "csrf_token": csrf_of(form.text)}
            )
        cookie = next(
            v for v in answer.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)
        )
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in attributes
        assert "samesite=strict" in attributes
        assert "path=/ui" in attributes
        assert any(a.startswith("max-age=") for a in attributes)
        assert "secure" not in attributes  # the public URL is http://
        assert tenant.key not in cookie
        assert tenant.key[3:11] not in cookie
        page = client.get("/ui/keys")
        assert page.status_code == 200
        assert tenant.key not in page.text
        # Signing out forgets the cookie; the next page asks to sign in.
        copied = client.cookies.get(SESSION_COOKIE, path="/ui")
        assert copied
        out = client.post("/ui/sign-out", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert client.get("/ui/connections").status_code == 303
        # And the session is over at the server too: a copy of its cookie no longer works.
        with httpx.Client(base_url=keygate.url, timeout=30) as thief:
            thief.cookies.set(SESSION_COOKIE, copied, path="/ui")
            refused = thief.get("/ui/connections")
            assert refused.status_code == 303
            assert refused.headers["location"].endswith("/ui/sign-in")


def test_a_wrong_key_is_refused_on_the_page(keygate: KeygateHarness) -> None:
    with httpx.Client(base_url=keygate.url, timeout=30) as client:
        form = client.get("/ui/sign-in")
        answer = client.post(
            "/ui/sign-in", data={"api_key": "kg_not-a-key", "csrf_token": csrf_of(form.text)}
        )
        assert answer.status_code == 401
        assert "not valid" in answer.text
        assert "kg_not-a-key" not in answer.text
        assert SESSION_COOKIE not in answer.cookies


def test_sign_in_without_its_form_token_is_refused(keygate: KeygateHarness, tenant: Tenant) -> None:
    with httpx.Client(base_url=keygate.url, timeout=30) as client:
        answer = client.post("/ui/sign-in", data={"api_key": tenant.key})
        assert answer.status_code == 403
        assert SESSION_COOKIE not in answer.cookies


def test_a_cross_site_post_without_the_csrf_token_is_refused(
    keygate: KeygateHarness, tenant: Tenant
) -> None:
    with signed_in(keygate.url, tenant.key) as (client, csrf):
        before = client.get("/ui/keys").text.count('<tr id="key-')
        refused = [
            client.post("/ui/keys", data={"name": "forged"}),
            client.post("/ui/keys", data={"name": "forged", "csrf_token": "wrong"}),
            client.post(
                "/ui/keys",
                data={"name": "forged", "csrf_token": csrf},
                headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
            ),
            client.post(
                "/ui/keys",
                data={"name": "forged", "csrf_token": csrf},
                headers={"Origin": "https://evil.example"},
            ),
        ]
        for answer in refused:
            assert answer.status_code == 403
            assert "refused" in answer.text
        assert client.get("/ui/keys").text.count('<tr id="key-') == before
        made = client.post(
            "/ui/keys", data={"name": "real", "csrf_token": csrf}, headers={"Origin": keygate.url}
        )
        assert made.status_code == 201
        assert client.get("/ui/keys").text.count('<tr id="key-') == before + 1


def test_another_workspaces_connection_is_a_404_everywhere(
    keygate: KeygateHarness, tenant: Tenant, other: Tenant
) -> None:
    theirs = _connection(other)
    their_key = other.http.get("/connections")  # keeps their key used; ids come from the store
    assert their_key.status_code == 200
    key_ids = keygate.run(keygate.runtime.keys.list_keys(other.workspace_id))
    with signed_in(keygate.url, tenant.key) as (client, csrf):
        for path in (f"/ui/connections/{theirs}", f"/ui/connections/{theirs}/status"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert theirs not in answer.text
        answer = client.post(f"/ui/connections/{theirs}/delete", data={"csrf_token": csrf})
        assert answer.status_code == 404
        answer = client.post(f"/ui/keys/{key_ids[0].id}/revoke", data={"csrf_token": csrf})
        assert answer.status_code == 404
        listing = client.get("/ui/connections")
        assert theirs not in listing.text
        for path in ("/ui/connections/not-a-uuid", "/ui/connections/not-a-uuid/status"):
            assert client.get(path).status_code == 404
    assert other.http.get(f"/connections/{theirs}").status_code == 200
    assert other.http.get("/connections").status_code == 200  # their key still works


def test_every_page_has_the_strict_policy(keygate: KeygateHarness, tenant: Tenant) -> None:
    connection_id = _connection(tenant)
    with signed_in(keygate.url, tenant.key) as (client, _):
        for path in ["/ui/sign-in", *_pages(connection_id), "/ui/nothing-here"]:
            answer = client.get(path)
            policy = answer.headers["content-security-policy"]
            if path == "/ui/nothing-here":
                assert answer.status_code == 404
                assert "frame-ancestors 'none'" in policy
                continue
            assert answer.status_code == 200, path
            assert policy == POLICY
            assert "default-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
            assert "unsafe-inline" not in policy
            assert answer.headers["cache-control"] == "no-store"
            assert answer.headers["x-frame-options"] == "DENY"
            assert "style=" not in answer.text
            assert "<script>" not in answer.text.replace(" ", "")
        for asset in ("dashboard.css", "dashboard.js", "htmx.min.js"):
            assert client.get(f"/ui/assets/{asset}").status_code == 200
        assert client.get("/ui/assets/..%2Fsession.py").status_code == 404


def test_revoking_the_key_ends_its_sessions(keygate: KeygateHarness, tenant: Tenant) -> None:
    with signed_in(keygate.url, tenant.key) as (client, csrf):
        me = keygate.run(keygate.runtime.keys.list_keys(tenant.workspace_id))[0]
        answer = client.post(f"/ui/keys/{me.id}/revoke", data={"csrf_token": csrf})
        assert answer.status_code == 303
        assert client.get("/ui/connections").status_code == 303
    assert tenant.http.get("/connections").status_code == 401


def test_the_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    harness = KeygateHarness(
        tmp_path, fresh_database(tmp_path, "keygate_ui_https"), public_url="https://keygate.example"
    )
    try:
        made = harness.tenant()
        with httpx.Client(base_url=harness.url, timeout=30) as client:
            form = client.get("/ui/sign-in")
            # A Secure cookie is not sent back over http://: hand it over as the browser would.
            nonce = form.headers["set-cookie"].split(";")[0]
            answer = client.post(
                "/ui/sign-in",
                data={"api_key": made.key, "csrf_token": csrf_of(form.text)},
                headers={"Cookie": nonce},
            )
            assert answer.status_code == 303
            cookie = next(
                v for v in answer.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)
            )
            assert "secure" in [part.strip().lower() for part in cookie.split(";")]
        made.close()
    finally:
        harness.stop()


def test_the_table_shows_token_expiry_and_errors(keygate: KeygateHarness, tenant: Tenant) -> None:
    active = keygate.import_connection(
        tenant, "constant-contact", {"access_token": "t"}, expires_in=7200
    )
    failed = _connection(tenant)
    keygate.run(
        keygate.runtime.connections.set_status(
            failed, Status.FAILED, "oauth_access_denied", "The user denied the request."
        )
    )
    with signed_in(keygate.url, tenant.key) as (client, _):
        page = client.get("/ui/connections").text
        expiry = (active.created_at + timedelta(seconds=7200)).strftime("%Y-%m-%d %H:")
        row = page[page.index(f'id="row-{active.id}"') :]
        assert expiry in row[: row.index("</tr>")]
        row = page[page.index(f'id="row-{failed}"') :]
        assert "oauth_access_denied: The user denied the request." in row[: row.index("</tr>")]
        failed_only = client.get("/ui/connections?status=FAILED").text
        assert failed in failed_only
        assert active.id not in failed_only


def test_the_record_views_show_only_the_workspace(
    keygate: KeygateHarness, tenant: Tenant, other: Tenant, recording: RecordingUpstream
) -> None:
    mine = keygate.import_connection(tenant, "klaviyo", {"access_token": "a"}).id
    theirs = keygate.import_connection(other, "klaviyo", {"access_token": "b"}).id
    for who, connection in ((tenant, mine), (other, theirs)):
        answer = who.http.get("/klaviyo/api/profiles", headers={"Maton-Connection": connection})
        assert answer.status_code == 200
    webhook = other.http.post("/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert webhook.status_code == 201, webhook.text
    their_webhook = webhook.json()["webhook"]["webhook_id"]
    with signed_in(keygate.url, tenant.key) as (client, csrf):
        # Imported connections have no events of their own: the webhook and key ones do.
        events = client.get("/ui/events").text
        assert theirs not in events
        assert their_webhook not in events
        logs = ""
        for _ in range(50):  # the log is written in batches, off the request path
            logs = client.get(f"/ui/logs?connection={mine}").text
            if "/api/profiles" in logs:
                break
            time.sleep(0.2)
        assert "/api/profiles" in logs
        assert theirs not in client.get("/ui/logs").text
        page = client.get(f"/ui/connections/{mine}").text
        assert "/api/profiles" in page
        listing = client.get("/ui/connections").text
        row = listing[listing.index(f'id="row-{mine}"') :]
        assert "UTC" in row[row.index('data-label="Last used"') :][:80]
        assert client.get(f"/ui/logs?connection={theirs}").text.count("/api/profiles") == 0
        assert client.get(f"/ui/webhooks/{their_webhook}").status_code == 404
        assert their_webhook not in client.get("/ui/webhooks").text
        answer = client.post(f"/ui/webhooks/{their_webhook}/delete", data={"csrf_token": csrf})
        assert answer.status_code == 404
        bad = client.get("/ui/logs?status=banana")
        assert bad.status_code == 400
        assert "status must be a status class" in bad.text
    assert other.http.get(f"/webhooks/{their_webhook}").status_code == 200


def test_a_webhook_secret_is_shown_once(keygate: KeygateHarness, tenant: Tenant) -> None:
    with signed_in(keygate.url, tenant.key) as (client, csrf):
        refused = client.post(
            "/ui/webhooks",
            data={
                "url": "ftp://example.com/x",
                "event_types": ["connection.created"],
                "csrf_token": csrf,
            },
        )
        assert refused.status_code == 400
        assert "http:// or https://" in refused.text
        made = client.post(
            "/ui/webhooks",
            data={
                "url": "http://127.0.0.1:9/hook",
                "event_types": ["connection.created", "api_key.created"],
                "csrf_token": csrf,
            },
        )
        assert made.status_code == 201
        secret = re.search(r'id="new-secret" readonly value="(whsec_[^"]+)"', made.text)
        assert secret
        listing = client.get("/ui/webhooks").text
        assert "127.0.0.1:9/hook" in listing
        assert secret.group(1) not in listing
        webhook_id = re.search(r'href="/ui/webhooks/(wh_[0-9a-f]{32})"', listing)
        assert webhook_id
        assert secret.group(1) not in client.get(f"/ui/webhooks/{webhook_id.group(1)}").text


def test_a_session_expires_on_the_server_too(keygate: KeygateHarness, tenant: Tenant) -> None:
    key = keygate.run(keygate.runtime.keys.list_keys(tenant.workspace_id))[0]
    cipher = keygate.runtime.cipher
    ttl = keygate.settings.ui_session_ttl_seconds
    fresh = mint_session(cipher, key.id, tenant.workspace_id)
    stale = mint_session(cipher, key.id, tenant.workspace_id, now=time.time() - ttl - 60)
    other_workspace = mint_session(cipher, key.id, str(uuid.uuid4()))
    with httpx.Client(base_url=keygate.url, timeout=30) as client:
        for token, status in ((fresh, 200), (stale, 303), (other_workspace, 303)):
            client.cookies.set(SESSION_COOKIE, token)
            assert client.get("/ui/keys").status_code == status
