"""Every HTML page Keygate serves carries a Content-Security-Policy, no-referrer and nosniff."""

from __future__ import annotations

import httpx
import pytest

from tests.support.harness import KeygateHarness, Tenant


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The response's CSP as directive → sources."""
    directives = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def assert_secured_page(response: httpx.Response) -> dict[str, list[str]]:
    """The security headers every page must have; its policy."""
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = policy(response)
    assert csp["default-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    for sources in csp.values():
        assert "'unsafe-inline'" not in sources
        assert "'unsafe-eval'" not in sources
        assert "*" not in sources
    return csp


def connect_url(tenant: Tenant, app: str, method: str) -> str:
    """A fresh connect link."""
    response = tenant.http.post("/connections", json={"app": app, "method": method})
    assert response.status_code == 201, response.text
    return str(response.json()["connection"]["url"])


def test_oauth_connect_page(keygate: KeygateHarness, tenant: Tenant) -> None:
    response = httpx.get(connect_url(tenant, "klaviyo", "OAUTH2"))
    assert response.status_code == 200
    csp = assert_secured_page(response)
    assert csp["style-src"] == ["'self'"]
    assert csp["script-src"] == ["'none'"]
    # The form posts here, and the answer redirects to the provider: both may be targets.
    authorize = keygate.runtime.apps["klaviyo"].oauth()
    assert authorize is not None
    provider = httpx.URL(str(authorize.authorize_url))
    assert csp["form-action"] == ["'self'", f"{provider.scheme}://{provider.netloc.decode()}"]


def test_api_key_connect_page(tenant: Tenant) -> None:
    response = httpx.get(connect_url(tenant, "klaviyo", "API_KEY"))
    assert response.status_code == 200
    assert 'type="password"' in response.text
    assert assert_secured_page(response)["form-action"] == ["'self'"]


@pytest.mark.parametrize(
    "path",
    [
        "/connect?session_token=forged",  # the page that says a link is not valid
        "/connect",
        "/oauth/callback",  # the page that says the state is missing
        "/oauth/callback?state=unknown&code=x",
    ],
)
def test_message_pages(keygate: KeygateHarness, path: str) -> None:
    response = httpx.get(f"{keygate.url}{path}")
    assert 400 <= response.status_code < 500
    csp = assert_secured_page(response)
    assert csp["form-action"] == ["'none'"]
    assert csp["script-src"] == ["'none'"]


def test_the_stylesheet_the_pages_load(keygate: KeygateHarness) -> None:
    response = httpx.get(f"{keygate.url}/connect/assets/keygate.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "font-family" in response.text


def test_docs_page_loads_only_from_this_origin(keygate: KeygateHarness) -> None:
    response = httpx.get(f"{keygate.url}/docs")
    assert response.status_code == 200
    csp = assert_secured_page(response)
    assert csp["script-src"][0] == "'self'"
    assert all(s.startswith("'sha256-") for s in csp["script-src"][1:])
    assert csp["connect-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert "http" not in response.text.replace(keygate.url, "")  # no absolute URL: no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/docs/assets/{asset}" in response.text
        served = httpx.get(f"{keygate.url}/docs/assets/{asset}")
        assert served.status_code == 200, asset
        assert served.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{keygate.url}/docs/assets/swagger-initializer.js").status_code == 404
    assert httpx.get(f"{keygate.url}/docs/assets/..%2f..%2f__init__.py").status_code == 404


def test_json_answers_get_nosniff_and_a_deny_all_policy(tenant: Tenant) -> None:
    response = tenant.http.get("/connections")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert policy(response)["default-src"] == ["'none'"]
