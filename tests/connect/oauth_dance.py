"""The OAuth connect flow over real HTTP, one hop at a time, as a browser would go through it.

Each `Browser` is an httpx client with its own cookie jar that never follows redirects, so a
test can stop at any hop, keep a URL for a replay, or hand it to another browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from keygate.store.records import CredentialRecord
from keygate.store.schema import ConnectSession
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate

_REQUEST_ID = re.compile(r'name="request_id" value="([^"]+)"')


def query(url: str) -> dict[str, str]:
    """The query parameters of a URL (first value of each)."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def session_token(url: str) -> str:
    """The session token of a connect url."""
    return query(url)["session_token"]


@dataclass
class Browser:
    """A person's browser: a cookie jar, no automatic redirects, every page it saw."""

    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    pages: list[str] = field(default_factory=list)

    def get(self, url: str) -> httpx.Response:
        """GET a URL and remember the page."""
        response = self.http.get(url)
        self.pages.append(response.text)
        return response

    def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        """POST a form and remember the page."""
        response = self.http.post(url, data=data)
        self.pages.append(response.text)
        return response

    def continue_from(self, connect_url: str) -> str:
        """Open a connect url, press Continue; return the provider authorize URL."""
        page = self.get(connect_url)
        assert page.status_code == 200, page.text
        assert 'id="continue"' in page.text
        origin = connect_url.split("/connect?", 1)[0]
        sent = self.post(f"{origin}/connect", {"session_token": session_token(connect_url)})
        assert sent.status_code == 303, sent.text
        return sent.headers["location"]

    def consent(self, authorize_url: str, decision: str = "approve") -> str:
        """Answer the sandbox consent page; return the callback URL it redirects to."""
        page = self.get(authorize_url)
        assert page.status_code == 200, page.text
        match = _REQUEST_ID.search(page.text)
        assert match, page.text
        action = authorize_url.split("?", 1)[0]
        answered = self.post(action, {"request_id": match.group(1), "decision": decision})
        assert answered.status_code == 302, answered.text
        return answered.headers["location"]

    def authorize(self, connect_url: str, decision: str = "approve") -> httpx.Response:
        """The whole dance: connect page, consent, callback; return Keygate's last page."""
        return self.get(self.consent(self.continue_from(connect_url), decision))

    def close(self) -> None:
        """Close the client."""
        self.http.close()


def create(tenant: Tenant, app: str, **body: Any) -> dict[str, Any]:
    """POST /connections; the new connection object."""
    response = tenant.http.post("/connections", json={"app": app, **body})
    assert response.status_code == 201, response.text
    connection: dict[str, Any] = response.json()["connection"]
    return connection


def fetch(tenant: Tenant, connection_id: str) -> dict[str, Any]:
    """GET /connections/{id}; the connection object (with a fresh url)."""
    response = tenant.http.get(f"/connections/{connection_id}")
    assert response.status_code == 200, response.text
    connection: dict[str, Any] = response.json()["connection"]
    return connection


def credentials(sandboxed: SandboxedKeygate, connection_id: str) -> CredentialRecord | None:
    """The decrypted credentials Keygate stored for a connection."""
    runtime = sandboxed.keygate.runtime
    found: CredentialRecord | None = sandboxed.keygate.run(
        runtime.connections.credentials(connection_id)
    )
    return found


def pending_session(sandboxed: SandboxedKeygate, connection_id: str) -> ConnectSession:
    """The newest pending authorization stored for a connection."""
    from sqlalchemy import select

    runtime = sandboxed.keygate.runtime

    async def newest() -> ConnectSession:
        async with runtime.db.read() as session:
            row = await session.scalar(
                select(ConnectSession)
                .where(ConnectSession.connection_id == connection_id)
                .order_by(ConnectSession.created_at.desc())
                .limit(1)
            )
        assert row is not None
        return row

    found: ConnectSession = sandboxed.keygate.run(newest())
    return found


def proxied_data(tenant: Tenant, app: str, connection_id: str) -> Any:
    """One call through the gateway with this connection; the upstream's JSON."""
    path = "/klaviyo/api/profiles" if app == "klaviyo" else "/constant-contact/v3/contacts"
    response = tenant.http.get(
        path, headers={"Maton-Connection": connection_id, "revision": "2026-01-15"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["keygate-connection"] == connection_id
    body = response.json()
    assert ("data" in body) if app == "klaviyo" else ("contacts" in body), body
    return body
