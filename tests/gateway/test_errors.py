"""The contract's gateway errors, over real HTTP: status, JSON body and Keygate-Error header."""

from __future__ import annotations

import httpx
import pytest

from keygate.store.records import Status
from tests.support.harness import KeygateHarness, Tenant
from tests.support.raw_http import error_code, raw_request


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    """The response is Keygate's own JSON error with that status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["keygate-error"] == code
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["status"] == status
    assert body["error"]["message"]
    return dict(body["error"])


def test_hung_upstream_gives_504(keygate: KeygateHarness, tenant: Tenant) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    assert_error(tenant.http.get("/klaviyo/hang"), 504, "upstream_timeout")


def test_refused_port_gives_502(keygate: KeygateHarness, tenant: Tenant) -> None:
    keygate.import_connection(tenant, "closed-port", {"api_key": "k"}, method="API_KEY")
    assert_error(tenant.http.get("/closed-port/anything"), 502, "upstream_unreachable")


def test_missing_and_wrong_key_give_401(keygate: KeygateHarness) -> None:
    with httpx.Client(base_url=keygate.url) as anonymous:
        assert_error(anonymous.get("/klaviyo/api/profiles"), 401, "invalid_api_key")
        wrong = {"Authorization": "Bearer kg_not_a_real_key"}
        assert_error(anonymous.get("/klaviyo/api/profiles", headers=wrong), 401, "invalid_api_key")
        basic = {"Authorization": "Basic a2c6eA=="}
        assert_error(anonymous.get("/klaviyo/api/profiles", headers=basic), 401, "invalid_api_key")


def test_revoked_key_gives_401(keygate: KeygateHarness, tenant: Tenant) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    assert tenant.http.get("/klaviyo/api/x").status_code == 200
    keygate.run(keygate.runtime.keys.revoke_key(tenant.key[:11]))
    assert_error(tenant.http.get("/klaviyo/api/x"), 401, "invalid_api_key")


def test_unknown_app_gives_404(tenant: Tenant) -> None:
    assert_error(tenant.http.get("/not-an-app/v1/things"), 404, "unknown_app")


def test_no_active_connection_gives_400(keygate: KeygateHarness, tenant: Tenant) -> None:
    body = assert_error(tenant.http.get("/klaviyo/api/profiles"), 400, "no_active_connection")
    assert "POST /connections" in str(body["message"])


def test_oldest_active_is_the_default(keygate: KeygateHarness, tenant: Tenant) -> None:
    pending = tenant.http.post("/connections", json={"app": "klaviyo"}).json()["connection"]
    first = keygate.import_connection(tenant, "klaviyo", {"access_token": "first"})
    second = keygate.import_connection(tenant, "klaviyo", {"access_token": "second"})
    response = tenant.http.get("/klaviyo/api/profiles")
    assert response.headers["keygate-connection"] == first.id
    assert pending["connection_id"] != first.id
    # Maton-Connection, or its Keygate alias, picks another one.
    for header in ("Maton-Connection", "Keygate-Connection"):
        chosen = tenant.http.get("/klaviyo/api/profiles", headers={header: second.id})
        assert chosen.headers["keygate-connection"] == second.id
        assert [v for k, v in chosen.json()["headers"] if k == "authorization"] == ["Bearer second"]


@pytest.mark.parametrize("bad_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
def test_unknown_connection_id_gives_404(
    keygate: KeygateHarness, tenant: Tenant, bad_id: str
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    response = tenant.http.get("/klaviyo/api/profiles", headers={"Maton-Connection": bad_id})
    assert_error(response, 404, "connection_not_found")


@pytest.mark.parametrize("header", ["Keygate-Connection", "Maton-Connection"])
def test_unknown_connection_error_names_the_header_sent(
    keygate: KeygateHarness, tenant: Tenant, header: str
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    response = tenant.http.get("/klaviyo/api/profiles", headers={header: "no-such-id"})
    message = str(assert_error(response, 404, "connection_not_found")["message"])
    assert header in message
    other = "Maton-Connection" if header == "Keygate-Connection" else "Keygate-Connection"
    assert other not in message


def test_other_apps_connection_gives_400(keygate: KeygateHarness, tenant: Tenant) -> None:
    cc = keygate.import_connection(tenant, "constant-contact", {"access_token": "cc"})
    response = tenant.http.get("/klaviyo/api/profiles", headers={"Maton-Connection": cc.id})
    assert_error(response, 400, "connection_app_mismatch")


def test_other_workspaces_connection_gives_404(keygate: KeygateHarness, tenant: Tenant) -> None:
    other = keygate.tenant()
    try:
        theirs = keygate.import_connection(other, "klaviyo", {"access_token": "theirs"})
        response = tenant.http.get("/klaviyo/api/profiles", headers={"Maton-Connection": theirs.id})
        assert_error(response, 404, "connection_not_found")
    finally:
        other.close()


def test_not_active_connection_gives_400(keygate: KeygateHarness, tenant: Tenant) -> None:
    pending = tenant.http.post("/connections", json={"app": "klaviyo"}).json()["connection"]
    response = tenant.http.get(
        "/klaviyo/api/profiles", headers={"Maton-Connection": pending["connection_id"]}
    )
    assert_error(response, 400, "connection_not_active")
    failed = keygate.import_connection(tenant, "klaviyo", {"access_token": "x"})
    keygate.run(keygate.runtime.connections.set_status(failed.id, Status.FAILED, "x", "y"))
    response = tenant.http.get("/klaviyo/api/profiles", headers={"Maton-Connection": failed.id})
    assert_error(response, 400, "connection_not_active")


def test_declared_body_over_limit_gives_413(keygate: KeygateHarness, tenant: Tenant) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    limit = keygate.settings.max_request_body
    # Only the header is sent: Keygate must refuse before reading (or forwarding) any body.
    status, headers, body = raw_request(
        keygate.port,
        b"/klaviyo/api/profiles",
        {"Authorization": f"Bearer {tenant.key}", "Content-Length": str(limit + 1)},
        b"POST",
    )
    assert status == 413
    assert headers["keygate-error"] == "body_too_large"
    assert error_code(body) == "body_too_large"


def test_unreadable_credential_gives_json_500_not_a_trace(
    keygate: KeygateHarness, tenant: Tenant
) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})

    async def corrupt() -> None:
        from sqlalchemy import update

        from keygate.store.schema import Credential

        async with keygate.runtime.db.write() as session:
            await session.execute(
                update(Credential)
                .where(Credential.connection_id == conn.id)
                .values(ciphertext="kg1.000000000000.AAAA")
            )

    keygate.run(corrupt())
    response = tenant.http.get("/klaviyo/api/profiles", headers={"Maton-Connection": conn.id})
    error = assert_error(response, 500, "internal_error")
    assert "X-Request-Id" in str(error["message"])
    assert response.headers["x-request-id"]
