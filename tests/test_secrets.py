"""Secrets never leak: not into logs, error bodies, reprs, nor the database in plain text.

Every check first shows the secret where it legitimately is (the upstream's header, the decrypted
record), so that a check that it is absent elsewhere can fail.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from keygate.catalog.loader import AppOverrides
from keygate.crypto import generate_key
from keygate.oauth.protocol import parse_token_response
from keygate.secret import Secret
from keygate.settings import Settings
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, Tenant, upstream_overrides
from tests.support.servers import ServerThread
from tests.support.stored import decryptable, stored_bytes
from tests.support.upstream import VALID_PRIVATE_KEY, RecordingUpstream

ACCESS = "at-secret-9d1c44e0b7"
REFRESH = "rt-secret-51aa3f2e86"
CLIENT_SECRET = "cs-secret-0c7e2b9a41"
WRONG_PRIVATE_KEY = "pk_wrong_secret_77e1"


def leaks(text: str, secrets: list[str]) -> list[str]:
    """The secrets that appear in `text`."""
    return [s for s in secrets if s in text]


def form_submit(base: str, page: httpx.Response, api_key: str) -> httpx.Response:
    """Post a connect page's form with a private key."""
    token = re.search(r'name="session_token" value="([^"]+)"', page.text)
    assert token, page.text
    return httpx.post(
        f"{base}/connect", data={"session_token": token.group(1), "api_key": api_key}, timeout=30
    )


def test_secrets_stay_out_of_logs_errors_reprs_and_the_database(
    keygate: KeygateHarness,
    tenant: Tenant,
    recording: RecordingUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="keygate")
    secrets = [ACCESS, REFRESH, CLIENT_SECRET, VALID_PRIVATE_KEY, WRONG_PRIVATE_KEY, tenant.key]
    bodies: list[str] = []

    # OAuth client secret, configured as the CLI does.
    keygate.configure("constant-contact", client_id="cid-secrets", client_secret=CLIENT_SECRET)
    configured = keygate.runtime.apps["constant-contact"]
    assert configured.client_secret is not None
    assert configured.client_secret.reveal() == CLIENT_SECRET
    bodies.append(tenant.http.get("/apps").text)

    # An imported OAuth token set, used through the gateway.
    oauth = keygate.import_connection(
        tenant, "constant-contact", {"access_token": ACCESS, "refresh_token": REFRESH}
    )
    ok = tenant.http.get("/constant-contact/v3/contacts", headers={"Maton-Connection": oauth.id})
    assert ok.status_code == 200
    assert recording.seen[-1].header_values("authorization") == [f"Bearer {ACCESS}"]

    # A Klaviyo private key pasted into the connect page: first a wrong one, then the right one.
    created = tenant.http.post("/connections", json={"app": "klaviyo", "method": "API_KEY"})
    klaviyo = created.json()["connection"]
    page = httpx.get(klaviyo["url"], timeout=30)
    refused = form_submit(keygate.url, page, WRONG_PRIVATE_KEY)
    assert refused.status_code == 400
    accepted = form_submit(keygate.url, page, VALID_PRIVATE_KEY)
    assert accepted.status_code == 200, accepted.text
    bodies += [page.text, refused.text, accepted.text]
    proxied = tenant.http.get(
        "/klaviyo/api/profiles", headers={"Maton-Connection": klaviyo["connection_id"]}
    )
    assert proxied.status_code == 200
    assert recording.seen[-1].header_values("authorization") == [
        f"Klaviyo-API-Key {VALID_PRIVATE_KEY}"
    ]

    # Keygate's own error bodies, for requests that carried secrets where secrets go.
    errors = [
        httpx.get(
            f"{keygate.url}/klaviyo/api/profiles",
            headers={"Authorization": f"Bearer {tenant.key}x"},
        ),
        httpx.get(f"{keygate.url}/connections", headers={"Authorization": f"Bearer {ACCESS}"}),
        tenant.http.post("/connections", json={"app": "klaviyo", "api_key": VALID_PRIVATE_KEY}),
        tenant.http.post("/connections", content=f'{{"app": "klaviyo", "x": "{ACCESS}'.encode()),
        tenant.http.get("/klaviyo/api/..%2f..%2fetc"),
        tenant.http.get("/constant-contact/status/500", headers={"Maton-Connection": "nope"}),
        tenant.http.delete(f"/connections/{klaviyo['connection_id']}x"),
    ]
    for response in errors:
        assert response.status_code >= 400
        assert "error" in response.json()
        bodies.append(response.text)
        bodies.extend(f"{k}: {v}" for k, v in response.headers.items())
    # Deleting revokes nothing here but must not log the tokens either.
    assert tenant.http.delete(f"/connections/{oauth.id}").status_code == 200

    for body in bodies:
        assert leaks(body, secrets) == [], body

    # Logs: the capture works (the audit lines name the connections) and holds no secret.
    logged = "\n".join(
        [caplog.text]
        + [r.getMessage() for r in caplog.records]
        + [repr(r.args) for r in caplog.records]
    )
    assert f"connection {klaviyo['connection_id']} is ACTIVE" in logged
    assert f"connection {oauth.id} deleted" in logged
    assert leaks(logged, secrets) == []

    # Reprs of what Keygate handles.
    credential = keygate.run(keygate.runtime.connections.credentials(klaviyo["connection_id"]))
    assert credential is not None
    assert credential.get("api_key") == VALID_PRIVATE_KEY
    tokens = parse_token_response(
        200,
        {"access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 60},
        datetime.now(UTC),
    )
    assert tokens.access_token == ACCESS
    settings = Settings(
        encryption_key=SecretStr(ACCESS),
        api_key=SecretStr(tenant.key),
        apps={"klaviyo": AppOverrides(client_secret=Secret(CLIENT_SECRET))},
    )
    assert settings.apps["klaviyo"].client_secret is not None
    objects: list[Any] = [
        credential,
        credential.values,
        Secret(ACCESS),
        tokens,
        settings,
        settings.apps,
        configured,
        AppOverrides(client_secret=Secret(CLIENT_SECRET)),
        keygate.runtime.apps,
    ]
    for thing in objects:
        assert leaks(repr(thing) + str(thing), secrets) == [], repr(thing)

    # The database holds the credentials as ciphertext that opens only with the key.
    stored = stored_bytes(keygate.settings.resolved_database_url)
    plain = decryptable(stored, keygate.runtime.cipher, klaviyo["connection_id"])
    assert plain
    assert all(VALID_PRIVATE_KEY.encode() in p for p in plain)
    assert set(decryptable(stored, keygate.runtime.cipher, "app:constant-contact")) == {
        CLIENT_SECRET.encode()
    }
    assert leaks(stored.decode("latin-1"), secrets) == []


def test_settings_repr_hides_the_encryption_key() -> None:
    key = generate_key()
    settings = Settings(encryption_key=SecretStr(key))
    assert settings.encryption_key is not None
    assert settings.encryption_key.get_secret_value() == key
    assert key not in repr(settings)
    assert key not in str(settings)
    assert key not in settings.model_dump_json()


QUERY_SECRET = "qs-secret-4b7d90ce13"
HEADER_SECRET = "hs-secret-70a2f3d9e1"
BASIC_PASSWORD = "bp-secret-2c81e5a0f7"


def test_injected_secrets_stay_out_of_logs_access_lines_errors_and_pages(
    tmp_path: Path,
    upstream: tuple[RecordingUpstream, ServerThread],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    recording = upstream[0]
    harness = KeygateHarness(
        tmp_path,
        fresh_database(tmp_path, "keygate_query_secret"),
        apps=upstream_overrides(upstream[1].url),
        catalog_dir=Path(__file__).parent / "support" / "catalog",
        access_log=True,
    )
    tenant = harness.tenant()
    bodies: list[str] = []
    try:
        # Through the gateway: the secret reaches the upstream's query, and only there.
        values = {"api_key": QUERY_SECRET, "account": "7"}
        harness.import_connection(tenant, "query-key", values, method="API_KEY")
        ok = tenant.http.get("/query-key/v1/items?api_key=mine&page=1")
        assert ok.status_code == 200
        assert recording.seen[-1].query == f"page=1&api_key={QUERY_SECRET}".encode()
        # A custom header and HTTP Basic, for completeness.
        harness.import_connection(tenant, "header-key", {"api_key": HEADER_SECRET}, "API_KEY")
        assert tenant.http.get("/header-key/v1/items").status_code == 200
        assert recording.seen[-1].header("x-api-key") == HEADER_SECRET
        pair = {"username": "ada", "password": BASIC_PASSWORD}
        harness.import_connection(tenant, "basic-auth", pair, "BASIC")
        assert tenant.http.get("/basic-auth/v1/items").status_code == 200
        basic = base64.b64encode(f"ada:{BASIC_PASSWORD}".encode()).decode()
        assert recording.seen[-1].header("authorization") == f"Basic {basic}"
        # An unreachable upstream: the client's error quotes the URL, secret included.
        harness.import_connection(tenant, "closed-port", {"api_key": QUERY_SECRET}, "API_KEY")
        unreachable = tenant.http.get("/closed-port/v1/items?page=1")
        assert unreachable.status_code == 502
        assert any(QUERY_SECRET in url for url in harness.recorder.urls)
        # The connect page's check, against the unreachable upstream.
        created = tenant.http.post("/connections", json={"app": "closed-port"}).json()
        page = httpx.get(created["connection"]["url"], timeout=30)
        refused = form_submit(harness.url, page, QUERY_SECRET)
        assert refused.status_code == 400
        assert "could not reach" in refused.text
        # Keygate's own bodies (the 200's is the test upstream echoing what it received).
        bodies += [unreachable.text, refused.text, page.text]
        for response in (ok, unreachable, refused):
            bodies.extend(f"{k}: {v}" for k, v in response.headers.items())
    finally:
        tenant.close()
        harness.stop()  # writes the access lines still queued

    secrets = [QUERY_SECRET, HEADER_SECRET, BASIC_PASSWORD, basic]
    for body in bodies:
        assert leaks(body, secrets) == [], body
    access = capfd.readouterr().err
    assert "keygate.access GET query-key /query-key/v1/items 200" in access, access[-2000:]
    assert "keygate.access GET closed-port /closed-port/v1/items 502" in access
    logged = "\n".join(
        [caplog.text, access]
        + [r.getMessage() for r in caplog.records]
        + [repr(r.args) for r in caplog.records]
        + [repr(r.exc_info) for r in caplog.records if r.exc_info]
    )
    assert leaks(logged, secrets) == []
