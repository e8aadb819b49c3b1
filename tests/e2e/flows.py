"""The steps of a connection's life over real HTTP, as a caller and a person's browser take them."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from keygate.catalog.model import ApiKeyMethod, AppSpec, Method, OAuth2Method
from tests.support.generic import GenericKeygate
from tests.support.harness import Tenant


def session_token(url: str) -> str:
    """The session token of a connect url."""
    return parse_qs(urlsplit(url).query)["session_token"][0]


def create(
    tenant: Tenant, app: str, method: str, params: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST /connections; the new connection object."""
    body: dict[str, Any] = {"app": app, "method": method}
    if params:
        body["params"] = params
    response = tenant.http.post("/connections", json=body)
    assert response.status_code == 201, response.text
    connection: dict[str, Any] = response.json()["connection"]
    return connection


def connect_oauth(browser: httpx.Client, url: str) -> httpx.Response:
    """Connect page → Continue → the provider (approves at once) → Keygate's callback."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    assert 'id="continue"' in page.text, page.text
    origin = url.split("/connect?", 1)[0]
    sent = browser.post(f"{origin}/connect", data={"session_token": session_token(url)})
    assert sent.status_code == 303, sent.text
    approved = browser.get(sent.headers["location"])
    assert approved.status_code == 302, approved.text
    return browser.get(approved.headers["location"])


def connect_secret(browser: httpx.Client, url: str, values: dict[str, str]) -> httpx.Response:
    """Connect page → the secret fields filled in → Keygate checks and stores them."""
    page = browser.get(url)
    assert page.status_code == 200, page.text
    origin = url.split("/connect?", 1)[0]
    return browser.post(f"{origin}/connect", data={"session_token": session_token(url), **values})


def call(tenant: Tenant, app: str, connection_id: str) -> httpx.Response:
    """One call through the gateway on that connection."""
    return tenant.http.get(f"/{app}/e2e/items", headers={"Keygate-Connection": connection_id})


def connect(
    generic: GenericKeygate, browser: httpx.Client, spec: AppSpec, method: Method, url: str
) -> httpx.Response:
    """The connect page for the method, driven to its end."""
    chosen = spec.method(method)
    if isinstance(chosen, OAuth2Method):
        return connect_oauth(browser, url)
    assert isinstance(chosen, ApiKeyMethod)
    return connect_secret(browser, url, generic.provider(spec.name).secrets_for(chosen))
