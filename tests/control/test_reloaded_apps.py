"""After an operator changes an app (`keygate apps configure`, then a reload), the control plane
and the connect pages answer with the new configuration, not the one they started with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness

NEW_BASE = "http://127.0.0.1:9/klaviyo-moved"


@pytest.fixture
def own_keygate(tmp_path: Path) -> Iterator[KeygateHarness]:
    """A Keygate of its own: this test changes its apps' configuration."""
    harness = KeygateHarness(tmp_path, fresh_database(tmp_path, "keygate_reloaded_apps"))
    yield harness
    harness.stop()


def continue_oauth(tenant_http: httpx.Client) -> httpx.Response:
    """Create a klaviyo OAuth connection and press Continue on its connect page."""
    created = tenant_http.post("/connections", json={"app": "klaviyo", "method": "OAUTH2"})
    assert created.status_code == 201, created.text
    link = created.json()["connection"]["url"]
    token = parse_qs(urlsplit(link).query)["session_token"][0]
    return httpx.post(
        link.split("?")[0], data={"session_token": token}, follow_redirects=False, timeout=10
    )


def test_routes_see_the_apps_as_reloaded(own_keygate: KeygateHarness) -> None:
    tenant = own_keygate.tenant()
    try:
        before = tenant.http.get("/apps/klaviyo").json()["app"]["base_url"]
        assert before != NEW_BASE
        listed = {a["app"]: a for a in tenant.http.get("/apps").json()["apps"]}
        assert listed["klaviyo"]["oauth_client_configured"] is False
        unconfigured = continue_oauth(tenant.http)
        assert unconfigured.status_code == 503
        assert "not set up yet" in unconfigured.text

        own_keygate.configure("klaviyo", base_url=NEW_BASE, client_id="cid-after-reload")

        assert tenant.http.get("/apps/klaviyo").json()["app"]["base_url"] == NEW_BASE
        listed = {a["app"]: a for a in tenant.http.get("/apps").json()["apps"]}
        assert listed["klaviyo"]["base_url"] == NEW_BASE
        assert listed["klaviyo"]["oauth_client_configured"] is True
        assert listed["constant-contact"]["oauth_client_configured"] is False
        redirected = continue_oauth(tenant.http)
        assert redirected.status_code == 303, redirected.text
        query = parse_qs(urlsplit(redirected.headers["location"]).query)
        assert query["client_id"] == ["cid-after-reload"]
    finally:
        tenant.close()
