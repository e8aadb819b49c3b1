"""The control plane over real HTTP: shapes, filters, pagination, isolation and bad input."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from keygate.store.records import Status
from tests.gateway.test_errors import assert_error
from tests.support.harness import KeygateHarness, Tenant

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FIELDS = {
    "connection_id",
    "status",
    "creation_time",
    "last_updated_time",
    "url",
    "app",
    "method",
    "metadata",
    "params",
}


def test_create_returns_pending_connection_with_url(
    keygate: KeygateHarness, tenant: Tenant
) -> None:
    response = tenant.http.post("/connections", json={"app": "klaviyo", "metadata": {"team": "a"}})
    assert response.status_code == 201
    conn = response.json()["connection"]
    assert set(conn) == FIELDS
    assert conn["status"] == "PENDING"
    assert conn["app"] == "klaviyo"
    assert conn["method"] == "OAUTH2"  # the app's first method
    assert conn["metadata"] == {"team": "a"}
    assert ISO.match(conn["creation_time"])
    assert ISO.match(conn["last_updated_time"])
    url = urlsplit(conn["url"])
    assert f"{url.scheme}://{url.netloc}" == keygate.url
    assert url.path == "/connect"
    assert parse_qs(url.query)["session_token"][0]


def test_create_with_explicit_method(tenant: Tenant) -> None:
    response = tenant.http.post("/connections", json={"app": "klaviyo", "method": "API_KEY"})
    assert response.json()["connection"]["method"] == "API_KEY"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"app": "nope"}, 400, "unknown_app"),
        ({"app": "constant-contact", "method": "API_KEY"}, 400, "unsupported_method"),
        ({"app": "klaviyo", "method": "TELEPATHY"}, 400, "invalid_request"),
        ({"app": "klaviyo", "colour": "blue"}, 400, "invalid_request"),
        ({"app": 42}, 400, "invalid_request"),
        ({"app": "klaviyo", "metadata": "not-an-object"}, 400, "invalid_request"),
        ({"app": "klaviyo", "method": "API_KEY", "scopes": ["a"]}, 400, "invalid_request"),
        ([], 400, "invalid_request"),
        ({}, 400, "invalid_request"),
    ],
)
def test_create_rejects_bad_bodies(tenant: Tenant, body: object, status: int, code: str) -> None:
    assert_error(tenant.http.post("/connections", json=body), status, code)


def test_create_rejects_invalid_json_and_oversize(keygate: KeygateHarness, tenant: Tenant) -> None:
    bad = tenant.http.post(
        "/connections", content=b'{"app": "klaviyo",', headers={"Content-Type": "application/json"}
    )
    error = assert_error(bad, 400, "invalid_request")
    assert "JSON" in str(error["message"])
    huge = b'{"app": "klaviyo", "metadata": {"x": "' + b"a" * (2 * 1024 * 1024) + b'"}}'
    assert_error(tenant.http.post("/connections", content=huge), 413, "body_too_large")
    big_meta = {"app": "klaviyo", "metadata": {"x": "a" * 20000}}
    assert_error(tenant.http.post("/connections", json=big_meta), 400, "invalid_request")


def test_get_and_delete(keygate: KeygateHarness, tenant: Tenant) -> None:
    created = tenant.http.post("/connections", json={"app": "constant-contact"}).json()
    conn_id = created["connection"]["connection_id"]
    got = tenant.http.get(f"/connections/{conn_id}")
    assert got.status_code == 200
    assert got.json()["connection"]["connection_id"] == conn_id
    deleted = tenant.http.delete(f"/connections/{conn_id}")
    assert deleted.status_code == 200
    assert deleted.json()["connection"]["status"] == "DELETED"
    assert_error(tenant.http.get(f"/connections/{conn_id}"), 404, "connection_not_found")
    assert_error(tenant.http.delete(f"/connections/{conn_id}"), 404, "connection_not_found")


def test_other_workspace_is_invisible(keygate: KeygateHarness, tenant: Tenant) -> None:
    other = keygate.tenant()
    try:
        theirs = other.http.post("/connections", json={"app": "klaviyo"}).json()["connection"]
        assert_error(
            tenant.http.get(f"/connections/{theirs['connection_id']}"), 404, "connection_not_found"
        )
        assert_error(
            tenant.http.delete(f"/connections/{theirs['connection_id']}"),
            404,
            "connection_not_found",
        )
        assert tenant.http.get("/connections").json()["connections"] == []
        assert other.http.get(f"/connections/{theirs['connection_id']}").status_code == 200
    finally:
        other.close()


def test_list_filters_and_order(keygate: KeygateHarness, tenant: Tenant) -> None:
    a = tenant.http.post("/connections", json={"app": "klaviyo"}).json()["connection"]
    b = keygate.import_connection(tenant, "constant-contact", {"access_token": "x"})
    c = tenant.http.post("/connections", json={"app": "klaviyo", "method": "API_KEY"}).json()
    d = keygate.import_connection(tenant, "klaviyo", {"access_token": "y"})
    keygate.run(keygate.runtime.connections.set_status(d.id, Status.FAILED, "oauth_x", "gone"))

    def ids(query: str) -> list[str]:
        response = tenant.http.get(f"/connections{query}")
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        return [x["connection_id"] for x in response.json()["connections"]]

    every = [a["connection_id"], b.id, c["connection"]["connection_id"], d.id]
    assert ids("") == every  # oldest first
    assert ids("?app=klaviyo") == [every[0], every[2], every[3]]
    assert ids("?app=constant-contact&status=ACTIVE") == [b.id]
    assert ids("?status=PENDING") == [every[0], every[2]]
    assert ids("?app=klaviyo&method=API_KEY") == [every[2]]
    failed = tenant.http.get("/connections?status=FAILED").json()["connections"][0]
    assert failed["error"] == {"code": "oauth_x", "message": "gone"}


def test_list_pagination(tenant: Tenant) -> None:
    made = [
        tenant.http.post("/connections", json={"app": "klaviyo"}).json()["connection"][
            "connection_id"
        ]
        for _ in range(5)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = tenant.http.get("/connections", params=params).json()
        seen += [c["connection_id"] for c in page["connections"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    assert pages == 3


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=1001",
        "?limit=abc",
        "?status=DELETED",
        "?status=nope",
        "?method=X",
        "?app=nope",
        "?cursor=%%%",
        "?cursor=Zm9v",
    ],
)
def test_list_rejects_bad_parameters(tenant: Tenant, query: str) -> None:
    response = tenant.http.get(f"/connections{query}")
    assert response.status_code == 400
    assert response.headers["keygate-error"] in {"invalid_request", "unknown_app", "invalid_cursor"}


def test_control_plane_requires_a_key(keygate: KeygateHarness) -> None:
    with httpx.Client(base_url=keygate.url) as anonymous:
        for method, path in [
            ("GET", "/connections"),
            ("POST", "/connections"),
            ("GET", "/connections/x"),
            ("DELETE", "/connections/x"),
            ("GET", "/apps"),
        ]:
            assert_error(anonymous.request(method, path), 401, "invalid_api_key")


def test_apps_catalog(tenant: Tenant) -> None:
    apps = {a["app"]: a for a in tenant.http.get("/apps").json()["apps"]}
    assert apps["klaviyo"]["methods"] == ["OAUTH2", "API_KEY"]
    assert apps["klaviyo"]["display_name"] == "Klaviyo"
    assert apps["constant-contact"]["methods"] == ["OAUTH2"]
    assert set(apps["klaviyo"]) == {
        "app",
        "display_name",
        "category",
        "methods",
        "docs_url",
        "base_url",
        "oauth_client_configured",
    }
    assert apps["klaviyo"]["category"] == "marketing"
    detail = tenant.http.get("/apps/klaviyo").json()["app"]
    assert detail["app"] == "klaviyo"
    assert detail["pagination"] == {"next": "links.next", "link": "absolute", "items": "data"}
    assert isinstance(detail["endpoints"], list)
    assert_error(tenant.http.get("/apps/nope"), 404, "unknown_app")


def test_unknown_route_and_method_are_json(tenant: Tenant) -> None:
    assert_error(tenant.http.get("/connections/a/b"), 404, "not_found")
    assert_error(tenant.http.put("/connections"), 405, "method_not_allowed")


def test_operations_endpoints(keygate: KeygateHarness, tenant: Tenant) -> None:
    with httpx.Client(base_url=keygate.url) as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").json()["status"] == "ok"
        assert "/connections" in anonymous.get("/openapi.json").json()["paths"]
        assert anonymous.get("/docs").status_code == 200
        keygate.import_connection(tenant, "klaviyo", {"access_token": "m"})
        tenant.http.get("/klaviyo/api/profiles")
        metrics = anonymous.get("/metrics").text
        assert 'keygate_gateway_requests_total{app="klaviyo",status="200"' in metrics
