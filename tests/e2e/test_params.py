"""Connection parameters and captured values through Keygate, against the generic sandbox."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from keygate.clock import utc_now
from tests.e2e.flows import call, connect_oauth, create, session_token
from tests.support.generic import GenericKeygate
from tests.support.harness import Tenant


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"subdomain": "ac.me"}, "params.subdomain (Your subdomain) must match"),
        ({"subdomain": "evil.example/x"}, "params.subdomain"),
        ({"subdomain": ""}, "params.subdomain must be a non-empty string"),
        ({"subdomain": 7}, "params.subdomain must be a non-empty string"),
        ({"shop": "acme"}, "params.shop: params-subdomain (OAUTH2) has no such parameter"),
    ],
)
def test_bad_params_are_refused_naming_the_parameter(
    tenant: Tenant, params: dict[str, object], named: str
) -> None:
    response = tenant.http.post("/connections", json={"app": "params-subdomain", "params": params})
    assert response.status_code == 400, response.text
    assert response.headers["keygate-error"] == "invalid_request"
    assert named in response.json()["error"]["message"]


def test_the_connect_page_asks_for_missing_params(
    generic: GenericKeygate, tenant: Tenant, browser: httpx.Client
) -> None:
    created = create(tenant, "params-subdomain", "OAUTH2")
    assert created["params"] == {}
    url = created["url"]
    page = browser.get(url)
    assert page.status_code == 200
    assert 'name="param.subdomain"' in page.text
    assert 'id="continue"' not in page.text
    origin = url.split("/connect?", 1)[0]
    form = {"session_token": session_token(url), "step": "params"}
    bad = browser.post(f"{origin}/connect", data={**form, "param.subdomain": "a/b"})
    assert bad.status_code == 400
    assert "e.g. acme" in bad.text
    good = browser.post(f"{origin}/connect", data={**form, "param.subdomain": "acme"})
    assert good.status_code == 200, good.text
    assert 'id="continue"' in good.text
    # The page's form may now go on to the provider the parameter names (its CSP says so).
    assert generic.server.url in good.headers["content-security-policy"]
    assert tenant.http.get(f"/connections/{created['connection_id']}").json()["connection"][
        "params"
    ] == {"subdomain": "acme"}
    done = connect_oauth(browser, url)
    assert done.status_code == 200, done.text
    assert call(tenant, "params-subdomain", created["connection_id"]).status_code == 200


def test_another_parameter_value_reaches_another_host(
    generic: GenericKeygate, tenant: Tenant, browser: httpx.Client
) -> None:
    created = create(tenant, "params-subdomain", "OAUTH2", {"subdomain": "globex"})
    page = browser.get(created["url"])
    assert page.status_code == 200
    origin = created["url"].split("/connect?", 1)[0]
    sent = browser.post(f"{origin}/connect", data={"session_token": session_token(created["url"])})
    assert sent.status_code == 303
    assert "/globex.desk.example.invalid/oauth/authorizations/new?" in sent.headers["location"]
    key = create(tenant, "params-subdomain", "BASIC", {"subdomain": "globex"})
    secrets = {"email": "sbx-email-0123456789", "token": "sbx-token-0123456789"}
    page = browser.get(key["url"])
    refused = browser.post(
        f"{origin}/connect", data={"session_token": session_token(key["url"]), **secrets}
    )
    # The sandbox plays acme's desk: globex's verify call lands elsewhere and is refused.
    assert refused.status_code == 400
    assert "rejected this key (401)" in refused.text


def test_minutes_and_rotating_refresh_tokens_as_the_entry_says(
    generic: GenericKeygate, tenant: Tenant, browser: httpx.Client
) -> None:
    created = create(tenant, "capture-callback", "OAUTH2")
    assert connect_oauth(browser, created["url"]).status_code == 200
    connection_id = created["connection_id"]
    runtime = generic.keygate.runtime
    stored = generic.keygate.run(runtime.connections.credentials(connection_id))
    assert stored.get("realm_id") == "4620816365"
    # expires_in 60, in minutes: an hour.
    lifetime = stored.expires_at - utc_now(generic.clock.now)
    assert timedelta(minutes=59) < lifetime <= timedelta(minutes=60)
    first_refresh = stored.get("refresh_token")
    generic.clock.advance(3601)
    assert call(tenant, "capture-callback", connection_id).status_code == 200
    fresh = generic.keygate.run(runtime.connections.credentials(connection_id))
    assert fresh.get("refresh_token") != first_refresh
    assert fresh.get("realm_id") == "4620816365"  # carried over: the refresh answer lacks it
    assert generic.provider("capture-callback").refresh[first_refresh].spent


def test_a_refresh_that_carries_a_new_instance_url_moves_the_connection(
    generic: GenericKeygate, tenant: Tenant, browser: httpx.Client
) -> None:
    provider = generic.provider("capture-token")
    created = create(tenant, "capture-token", "OAUTH2")
    assert connect_oauth(browser, created["url"]).status_code == 200
    connection_id = created["connection_id"]
    assert call(tenant, "capture-token", connection_id).status_code == 200
    provider.answers["instance_url"] = "https://globex.my.crm.example.invalid"
    try:
        generic.clock.advance(provider.access_ttl + 1)
        moved = call(tenant, "capture-token", connection_id)
        assert moved.status_code == 200, (moved.text, provider.refusals[-1:])
        assert moved.json()["path"].startswith("globex.my.crm.example.invalid/services/data/")
    finally:
        provider.answers.clear()


def test_an_app_shows_the_parameters_each_method_asks_for(tenant: Tenant) -> None:
    app = tenant.http.get("/apps/params-subdomain").json()["app"]
    assert app["base_url"] == "https://{subdomain}.desk.example.invalid/api/v2"
    assert [p["name"] for p in app["params"]["OAUTH2"]] == ["subdomain"]
    assert app["params"]["BASIC"][0]["example"] == "acme"


def test_a_capture_that_does_not_match_its_pattern_fails_the_authorization(
    generic: GenericKeygate, tenant: Tenant, browser: httpx.Client
) -> None:
    provider = generic.provider("capture-token")
    created = create(tenant, "capture-token", "OAUTH2")
    provider.answers["instance_url"] = "https://evil.example.invalid"
    try:
        page = connect_oauth(browser, created["url"])
    finally:
        provider.answers.clear()
    assert page.status_code == 502
    assert "capture instance_url" in page.text
    assert "evil.example.invalid" not in page.text
    shown = tenant.http.get(f"/connections/{created['connection_id']}").json()["connection"]
    assert shown["status"] == "FAILED"
    assert shown["error"]["code"] == "oauth_capture_failed"
