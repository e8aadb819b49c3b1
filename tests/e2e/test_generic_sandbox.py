"""The generic sandbox enforces its catalog entry's rules: each refusal, over real HTTP.

A sandbox that let a wrong request by would make the end-to-end test of every app prove
nothing, so each rule it enforces is shown refusing here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from keygate.catalog.model import OAuth2Method
from keygate.oauth.protocol import new_code_verifier, s256_challenge
from keygate.sandbox.generic import CLIENT_ID, CLIENT_SECRET
from tests.support.generic import GenericKeygate

BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


class Provider:
    """Direct HTTP to one app's generic sandbox, as a client of that provider."""

    def __init__(self, generic: GenericKeygate, app: str) -> None:
        self.state = generic.provider(app)
        oauth = self.state.oauth()
        assert oauth is not None
        self.oauth: OAuth2Method = oauth
        self.origin = generic.sandbox_url(app)
        self.http = httpx.Client(timeout=30)

    def at(self, template: str) -> str:
        """Where the sandbox serves a URL template of the entry."""
        return f"{self.origin}/{self.state.url(template)}"

    def authorize(self, **changes: str | None) -> httpx.Response:
        """An authorization request as the entry wants it, with `changes` (None drops one)."""
        query: dict[str, str | None] = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": self.state.redirect_uri,
            "state": "s",
            "scope": self.oauth.scope_separator.join(self.oauth.scopes) or None,
        }
        query.update({k: v for k, v in self.oauth.authorize_params.items()})
        query.update(changes)
        kept = {k: v for k, v in query.items() if v is not None}
        return self.http.get(self.at(self.oauth.authorize_url) + "?" + urlencode(kept))

    def code(self, verifier: str | None = None) -> str:
        """A code for a right request (with the S256 challenge of `verifier`)."""
        extra = (
            {}
            if verifier is None
            else {
                "code_challenge": s256_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        answer = self.authorize(**extra)
        assert answer.status_code == 302, answer.text
        return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]

    def token(
        self,
        fields: dict[str, str],
        *,
        basic: bool | None = None,
        json: bool | None = None,
        token_params: bool = True,
    ) -> httpx.Response:
        """A token request; client authentication and body format as the entry says unless
        `basic` / `json` say otherwise."""
        use_basic = self.oauth.client_auth == "basic" if basic is None else basic
        use_json = self.oauth.token_body == "json" if json is None else json
        body = dict(fields)
        headers = {}
        if use_basic:
            headers["Authorization"] = BASIC
        else:
            body.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        if token_params:
            body.update(self.oauth.token_params)
        url = self.at(self.oauth.token_url)
        if use_json:
            return self.http.post(url, json=body, headers=headers)
        return self.http.post(url, data=body, headers=headers)

    def exchange(self, code: str, verifier: str | None = None, **more: Any) -> httpx.Response:
        """The code exchange."""
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.state.redirect_uri,
        }
        if verifier is not None:
            fields["code_verifier"] = verifier
        return self.token(fields, **more)


@pytest.fixture
def provider(generic: GenericKeygate, request: pytest.FixtureRequest) -> Iterator[Provider]:
    """Direct HTTP to the sandbox of the app the test names."""
    made = Provider(generic, request.param)
    yield made
    made.http.close()


def refused(response: httpx.Response, error: str) -> None:
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == error, response.text


@pytest.mark.parametrize("provider", ["params-subdomain"], indirect=True)
def test_basic_client_auth_is_required_where_the_entry_says_basic(provider: Provider) -> None:
    refused(provider.exchange(provider.code(), basic=False), "invalid_client")
    assert provider.exchange(provider.code()).status_code == 200


@pytest.mark.parametrize("provider", ["capture-token"], indirect=True)
def test_client_auth_in_the_body_and_pkce_are_required_where_the_entry_says(
    provider: Provider,
) -> None:
    verifier = new_code_verifier()
    refused(provider.exchange(provider.code(verifier), verifier, basic=True), "invalid_client")
    refused(provider.authorize(), "invalid_request")  # no code_challenge
    refused(provider.exchange(provider.code(verifier)), "invalid_request")  # no verifier
    refused(provider.exchange(provider.code(verifier), new_code_verifier()), "invalid_grant")
    good = provider.exchange(provider.code(verifier), verifier)
    assert good.status_code == 200, good.text
    assert good.json()["instance_url"] == "https://acme.my.crm.example.invalid"
    assert good.json()["team"] == {"id": "T0123ABC"}


@pytest.mark.parametrize("provider", ["capture-request"], indirect=True)
def test_a_json_token_body_is_required_where_the_entry_says_json(provider: Provider) -> None:
    refused(provider.exchange(provider.code(), json=False), "invalid_request")
    assert provider.exchange(provider.code()).status_code == 200


@pytest.mark.parametrize("provider", ["params-subdomain"], indirect=True)
def test_the_registered_redirect_uri_only(provider: Provider) -> None:
    refused(provider.authorize(redirect_uri="http://127.0.0.1:1/elsewhere"), "invalid_request")
    code = provider.code()
    wrong = provider.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://x.invalid/cb"}
    )
    refused(wrong, "invalid_grant")


@pytest.mark.parametrize("provider", ["capture-callback"], indirect=True)
def test_a_rotating_refresh_token_works_once(provider: Provider) -> None:
    answer = provider.authorize()
    assert parse_qs(urlsplit(answer.headers["location"]).query)["realmId"] == ["4620816365"]
    tokens = provider.exchange(provider.code()).json()
    assert tokens["expires_in"] == 60  # minutes, as the entry says
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    first = provider.token(refresh)
    assert first.status_code == 200, first.text
    assert first.json()["refresh_token"] != tokens["refresh_token"]
    refused(provider.token(refresh), "invalid_grant")
    fresh = {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    refused(provider.token(fresh, token_params=False), "invalid_request")  # no audience


@pytest.mark.parametrize("provider", ["params-subdomain"], indirect=True)
def test_the_api_answers_only_at_the_parameters_host_with_the_credential_injected(
    provider: Provider,
) -> None:
    token = provider.exchange(provider.code()).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}", "X-Desk-Site": "acme"}
    api = f"{provider.origin}/acme.desk.example.invalid/api/v2/tickets"
    assert provider.http.get(api, headers=bearer).status_code == 200
    other = f"{provider.origin}/globex.desk.example.invalid/api/v2/tickets"
    assert provider.http.get(other, headers=bearer).status_code == 401
    assert provider.http.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert (
        provider.http.get(api, headers={**bearer, "Authorization": "Bearer x"}).status_code == 401
    )
