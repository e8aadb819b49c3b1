"""Helpers that play the OAuth client and the person at the consent page."""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx

from keygate.sandbox.oauth.protocol import basic_auth_header, s256_challenge

from .conftest import REDIRECT_URI

CLIENT = ("sandbox-client", "sandbox-secret")
KLAVIYO_AUTHORIZE = "/oauth/authorize"
KLAVIYO_TOKEN = "/oauth/token"
CC_AUTHORIZE = "/oauth2/default/v1/authorize"
CC_TOKEN = "/oauth2/default/v1/token"
KLAVIYO_SCOPES = "accounts:read profiles:read profiles:write lists:read lists:write"
CC_SCOPES = "account_read contact_data offline_access"


def new_verifier() -> str:
    """Return a fresh RFC 7636 code verifier (64 characters)."""
    return secrets.token_urlsafe(48)[:64]


def authorize_params(scope: str, verifier: str | None, **extra: str) -> dict[str, str]:
    """Build authorize query parameters for the test client."""
    params = {
        "response_type": "code",
        "client_id": CLIENT[0],
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "st-123",
    }
    if verifier is not None:
        params |= {"code_challenge": s256_challenge(verifier), "code_challenge_method": "S256"}
    return params | extra


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """Return the query parameters of a redirect's Location (asserting it is a redirect)."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def decide(
    client: httpx.AsyncClient, path: str, params: dict[str, str], decision: str
) -> httpx.Response:
    """Open the consent page and press Approve or Deny; return the redirect."""
    page = await client.get(path, params=params)
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id is not None
    form = {"request_id": request_id.group(1), "decision": decision}
    return await client.post(path, data=form)


async def get_code(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> str:
    """Approve on the consent page and return the authorization code."""
    query = redirect_query(await decide(client, path, params, "approve"))
    assert query["state"] == params["state"]
    return query["code"]


async def token_call(
    client: httpx.AsyncClient,
    path: str,
    form: dict[str, str],
    auth: tuple[str, str] | None = CLIENT,
) -> httpx.Response:
    """POST a form to a token endpoint with HTTP Basic client auth."""
    headers = {"Authorization": basic_auth_header(*auth)} if auth else {}
    return await client.post(path, data=form, headers=headers)


async def klaviyo_tokens(client: httpx.AsyncClient, scope: str = KLAVIYO_SCOPES) -> dict[str, str]:
    """Run Klaviyo's full PKCE authorization code flow and return the token answer."""
    verifier = new_verifier()
    code = await get_code(client, KLAVIYO_AUTHORIZE, authorize_params(scope, verifier))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
    }
    response = await token_call(client, KLAVIYO_TOKEN, form)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def cc_tokens(client: httpx.AsyncClient, scope: str = CC_SCOPES) -> dict[str, str]:
    """Run Constant Contact's authorization code flow (with PKCE) and return the answer."""
    verifier = new_verifier()
    code = await get_code(client, CC_AUTHORIZE, authorize_params(scope, verifier))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
    }
    response = await token_call(client, CC_TOKEN, form)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body
