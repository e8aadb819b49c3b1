"""Credential injection and header rules, observed at a real upstream."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs

import httpx

from tests.support.harness import KeygateHarness, Tenant
from tests.support.upstream import RecordingUpstream


def test_bearer_injected_for_imported_oauth_connection(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    conn = keygate.import_connection(tenant, "constant-contact", {"access_token": "cc-access-abc"})
    response = tenant.http.get("/constant-contact/v3/contacts?limit=5")
    assert response.status_code == 200
    seen = recording.seen[-1]
    assert seen.raw_path == b"/v3/contacts"
    assert seen.query == b"limit=5"
    assert seen.header_values("authorization") == ["Bearer cc-access-abc"]
    assert response.headers["keygate-connection"] == conn.id
    assert response.headers["x-request-id"]


def test_klaviyo_private_key_injected(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"api_key": "pk_abcdef123"}, method="API_KEY")
    assert tenant.http.get("/klaviyo/api/profiles").status_code == 200
    assert recording.seen[-1].header_values("authorization") == ["Klaviyo-API-Key pk_abcdef123"]


def test_caller_authorization_never_reaches_upstream(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl-token"})
    tenant.http.get("/klaviyo/api/lists", headers={"X-Custom": "kept"})
    seen = recording.seen[-1]
    assert all(tenant.key not in value for _, value in seen.headers)
    assert seen.header_values("authorization") == ["Bearer kl-token"]
    assert seen.header("x-custom") == "kept"


def test_revision_default_added_only_when_absent(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl-token"})
    tenant.http.get("/klaviyo/api/profiles")
    assert recording.seen[-1].header_values("revision") == ["2026-01-15"]
    tenant.http.get("/klaviyo/api/profiles", headers={"Revision": "2025-10-15"})
    assert recording.seen[-1].header_values("revision") == ["2025-10-15"]
    # Constant Contact's catalog entry has no default headers.
    keygate.import_connection(tenant, "constant-contact", {"access_token": "cc"})
    tenant.http.get("/constant-contact/v3/account/summary")
    assert recording.seen[-1].header("revision") is None


def test_connection_and_hop_by_hop_headers_are_not_forwarded(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "kl-token"})
    tenant.http.get(
        "/klaviyo/api/lists",
        headers={
            "Maton-Connection": conn.id,
            "Keygate-Connection": conn.id,
            "Keygate-Debug": "1",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "secret-ish",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        },
    )
    names = {name for name, _ in recording.seen[-1].headers}
    for dropped in (
        "maton-connection",
        "keygate-connection",
        "keygate-debug",
        "x-drop-me",
        "proxy-authorization",
    ):
        assert dropped not in names
    assert recording.seen[-1].header("host") == f"127.0.0.1:{keygate_upstream_port(recording)}"


def keygate_upstream_port(recording: RecordingUpstream) -> str:
    """The upstream's port, as the Host header Keygate sent names it."""
    host = recording.seen[-1].header("host") or ""
    return host.rsplit(":", 1)[-1]


def test_query_string_forwarded_byte_for_byte(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl-token"})
    query = b"page%5Bcursor%5D=abc&filter=equals(email,%22a@b.c%22)"
    # httpx would re-encode a str URL; hand it the raw target.
    url = tenant.http.base_url.join("/klaviyo/api/profiles").copy_with(query=query)
    response = tenant.http.get(url)
    assert response.status_code == 200
    assert recording.seen[-1].query == query
    assert response.json()["query"] == query.decode()


def test_response_hop_by_hop_headers_and_those_connection_names_are_dropped() -> None:
    from keygate.gateway.headers import downstream_response_headers

    items = [
        ("content-type", "application/json"),
        ("connection", "keep-alive"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("x-hop", "1"),
        ("x-kept", "2"),
    ]
    kept = downstream_response_headers(items, "keep-alive")
    assert kept == [(b"content-type", b"application/json"), (b"x-hop", b"1"), (b"x-kept", b"2")]
    named = downstream_response_headers(items, "Keep-Alive, X-Hop")
    assert named == [(b"content-type", b"application/json"), (b"x-kept", b"2")]
    assert downstream_response_headers(items, None) == kept


def test_request_ids_are_the_callers_when_valid_else_new_and_unique(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    import re

    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl-token"})
    own = tenant.http.get("/klaviyo/api/lists", headers={"X-Request-Id": "trace-7.a:b_c"})
    assert own.headers["x-request-id"] == "trace-7.a:b_c"
    assert recording.seen[-1].header("x-request-id") == "trace-7.a:b_c"
    made = [
        tenant.http.get("/klaviyo/api/lists", headers=headers).headers["x-request-id"]
        for headers in ({}, {}, {"X-Request-Id": "not/valid"}, {"X-Request-Id": "x" * 129})
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made), made
    assert len(set(made)) == len(made)


def test_a_custom_header_replaces_the_callers_copy(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "header-key", {"api_key": "hk-secret"}, method="API_KEY")
    response = tenant.http.get(
        "/header-key/v1/items",
        headers=[("X-Api-Key", "caller-value"), ("x-api-key", "again"), ("X-Kept", "1")],
    )
    assert response.status_code == 200, response.text
    seen = recording.seen[-1]
    assert seen.header_values("x-api-key") == ["hk-secret"]
    assert seen.header("x-kept") == "1"
    assert seen.header("authorization") is None


def test_a_query_parameter_is_injected_and_the_callers_copies_dropped(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    secret = "qk secret&=/+é"  # everything that needs percent-encoding in a query
    values = {"api_key": secret, "account": "42"}
    keygate.import_connection(tenant, "query-key", values, method="API_KEY")
    query = b"api_key=mine&page=2&API_KEY=upper&api%5Fkey=encoded&api_key&filter=a%26b"
    url = tenant.http.base_url.join("/query-key/v1/items").copy_with(query=query)
    response = tenant.http.get(url, headers={"X-Account": "caller"})
    assert response.status_code == 200, response.text
    seen = recording.seen[-1]
    assert seen.raw_path == b"/v1/items"
    assert seen.query == b"page=2&filter=a%26b&api_key=qk%20secret%26%3D%2F%2B%C3%A9"
    assert parse_qs(seen.query.decode())["api_key"] == [secret]
    assert seen.header_values("x-account") == ["acct-42"]
    # Without a caller query, the injected parameter is the whole query.
    tenant.http.get("/query-key/v1/items")
    assert recording.seen[-1].query == b"api_key=qk%20secret%26%3D%2F%2B%C3%A9"


def test_basic_credentials_are_base64_encoded(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    # Entered on the connect page, as a person connects a BASIC app.
    created = tenant.http.post("/connections", json={"app": "basic-auth"}).json()["connection"]
    assert created["method"] == "BASIC"
    page = httpx.get(created["url"], timeout=30)
    token = re.search(r'name="session_token" value="([^"]+)"', page.text)
    assert token, page.text
    form = {"session_token": token.group(1), "username": "ada", "password": "pa:ss wörd"}
    assert httpx.post(f"{keygate.url}/connect", data=form, timeout=30).status_code == 200
    chosen = {"Maton-Connection": created["connection_id"], "X-Other": "kept"}
    response = tenant.http.get("/basic-auth/v1/me", headers=chosen)
    assert response.status_code == 200, response.text
    expected = "Basic " + base64.b64encode("ada:pa:ss wörd".encode()).decode()
    seen = recording.seen[-1]
    assert seen.header_values("authorization") == [expected]
    assert seen.header("x-other") == "kept"


def test_the_connect_page_checks_a_key_injected_as_the_gateway_injects_it(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    created = tenant.http.post("/connections", json={"app": "query-key"}).json()["connection"]
    page = httpx.get(created["url"], timeout=30)
    token = re.search(r'name="session_token" value="([^"]+)"', page.text)
    assert token, page.text
    form = {"session_token": token.group(1), "api_key": "pasted-key", "account": "9"}
    done = httpx.post(f"{keygate.url}/connect", data=form, timeout=30)
    assert done.status_code == 200, done.text
    check = recording.seen[-1]
    assert check.raw_path == b"/verify/query-key"
    assert check.query == b"api_key=pasted-key"
    assert check.header_values("x-account") == ["acct-9"]
    chosen = {"Maton-Connection": created["connection_id"]}
    assert tenant.http.get("/query-key/v1/items", headers=chosen).status_code == 200
    assert (recording.seen[-1].query, recording.seen[-1].header("x-account")) == (
        b"api_key=pasted-key",
        "acct-9",
    )


def test_a_credential_that_no_longer_fits_the_catalog_is_not_a_credentials_outage(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    # Stored before the catalog's template named `api_key`: a configuration fault, not a 503.
    keygate.import_connection(tenant, "header-key", {"key": "old"}, method="API_KEY")
    response = tenant.http.get("/header-key/v1/items")
    assert response.status_code == 500, response.text
    assert response.headers["keygate-error"] == "internal_error"
    assert "'api_key'" in response.json()["error"]["message"]
    assert "old" not in response.text
    assert recording.seen == []


def test_the_connect_page_refuses_a_key_a_header_cannot_carry(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    created = tenant.http.post("/connections", json={"app": "header-key"}).json()["connection"]
    page = httpx.get(created["url"], timeout=30)
    token = re.search(r'name="session_token" value="([^"]+)"', page.text)
    assert token, page.text
    form = {"session_token": token.group(1), "api_key": "abc\r\nX-Injected: 1"}
    refused = httpx.post(f"{keygate.url}/connect", data=form, timeout=30)
    assert refused.status_code == 400
    assert "does not look like" in refused.text
    assert recording.seen == []
    status = tenant.http.get(f"/connections/{created['connection_id']}").json()["connection"]
    assert status["status"] == "PENDING"
