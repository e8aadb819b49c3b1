"""Secrets never leak: not into logs, error bodies, reprs, nor the database in plain text.

Every check first shows the secret where it legitimately is (the upstream's header, the decrypted
record), so that a check that it is absent elsewhere can fail.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from keygate.catalog.loader import AppOverrides
from keygate.crypto import generate_key
from keygate.oauth.protocol import parse_token_response
from keygate.secret import Secret
from keygate.settings import Settings
from tests.support.harness import KeygateHarness, Tenant
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
