"""The authorization endpoints: consent page, decisions, redirect URI and PKCE rules."""

from __future__ import annotations

import httpx
import pytest

from keygate.sandbox.constant_contact.store import ConstantContactState
from keygate.sandbox.klaviyo.store import KlaviyoState

from .conftest import REDIRECT_URI
from .oauth_helpers import (
    CC_AUTHORIZE,
    CC_SCOPES,
    KLAVIYO_AUTHORIZE,
    KLAVIYO_SCOPES,
    authorize_params,
    decide,
    new_verifier,
    redirect_query,
)


async def test_consent_page_names_app_and_scopes(klaviyo: httpx.AsyncClient) -> None:
    page = await klaviyo.get(
        KLAVIYO_AUTHORIZE, params=authorize_params(KLAVIYO_SCOPES, new_verifier())
    )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Keygate" in page.text
    assert "Klaviyo" in page.text
    for scope in KLAVIYO_SCOPES.split():
        assert f"<code>{scope}</code>" in page.text
    assert 'id="approve"' in page.text
    assert 'id="deny"' in page.text


async def test_approve_redirects_with_code_and_state(klaviyo: httpx.AsyncClient) -> None:
    params = authorize_params(KLAVIYO_SCOPES, new_verifier())
    query = redirect_query(await decide(klaviyo, KLAVIYO_AUTHORIZE, params, "approve"))
    assert query["state"] == "st-123"
    assert len(query["code"]) > 20


async def test_deny_redirects_with_access_denied(cc: httpx.AsyncClient) -> None:
    params = authorize_params(CC_SCOPES, None)
    query = redirect_query(await decide(cc, CC_AUTHORIZE, params, "deny"))
    assert query["error"] == "access_denied"
    assert query["error_description"]
    assert query["state"] == "st-123"
    assert "code" not in query


@pytest.mark.parametrize("client_name", ["klaviyo", "cc"])
@pytest.mark.parametrize(
    "override",
    [
        {"client_id": "someone-else"},
        {"redirect_uri": "http://evil.test/oauth/callback"},
        {"redirect_uri": REDIRECT_URI + "/"},
        {"redirect_uri": REDIRECT_URI + "?x=1"},
    ],
)
async def test_bad_client_or_redirect_shows_error_page(
    request: pytest.FixtureRequest, client_name: str, override: dict[str, str]
) -> None:
    app = request.getfixturevalue(f"{client_name}_app")
    path = KLAVIYO_AUTHORIZE if client_name == "klaviyo" else CC_AUTHORIZE
    params = authorize_params("profiles:read", new_verifier()) | override
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "id=error" in response.text


@pytest.mark.parametrize(
    ("drop", "extra", "error"),
    [
        (("code_challenge", "code_challenge_method"), {}, "invalid_request"),
        ((), {"code_challenge_method": "plain"}, "invalid_request"),
        ((), {"response_type": "token"}, "unsupported_response_type"),
        ((), {"scope": "bogus"}, "invalid_scope"),
    ],
)
async def test_klaviyo_rejects_by_redirect(
    klaviyo: httpx.AsyncClient, drop: tuple[str, ...], extra: dict[str, str], error: str
) -> None:
    params = authorize_params(KLAVIYO_SCOPES, new_verifier()) | extra
    for name in drop:
        del params[name]
    query = redirect_query(await klaviyo.get(KLAVIYO_AUTHORIZE, params=params))
    assert query["error"] == error
    assert query["state"] == "st-123"


async def test_cc_pkce_is_optional(cc: httpx.AsyncClient) -> None:
    page = await cc.get(CC_AUTHORIZE, params=authorize_params(CC_SCOPES, None))
    assert page.status_code == 200
    assert "Constant Contact" in page.text


async def test_auto_approve_redirects_at_once(
    klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState
) -> None:
    klaviyo_state.config.auto_approve = True
    response = await klaviyo.get(
        KLAVIYO_AUTHORIZE, params=authorize_params(KLAVIYO_SCOPES, new_verifier())
    )
    assert redirect_query(response)["code"]
    assert klaviyo_state.stats.authorize_calls == 1


async def test_redirect_uris_follow_admin_config(
    cc: httpx.AsyncClient, cc_state: ConstantContactState
) -> None:
    other = "http://127.0.0.1:9999/oauth/callback"
    params = authorize_params(CC_SCOPES, None, redirect_uri=other)
    assert (await cc.get(CC_AUTHORIZE, params=params)).status_code == 400
    answer = await cc.post("/_sandbox/config", json={"redirect_uris": [REDIRECT_URI, other]})
    assert answer.status_code == 200
    assert answer.json()["redirect_uris"] == [REDIRECT_URI, other]
    assert (await cc.get(CC_AUTHORIZE, params=params)).status_code == 200
    assert cc_state.config.redirect_uris == [REDIRECT_URI, other]


async def test_consent_request_is_single_use(klaviyo: httpx.AsyncClient) -> None:
    params = authorize_params(KLAVIYO_SCOPES, new_verifier())
    page = await klaviyo.get(KLAVIYO_AUTHORIZE, params=params)
    request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
    first = await klaviyo.post(
        KLAVIYO_AUTHORIZE, data={"request_id": request_id, "decision": "approve"}
    )
    assert first.status_code == 302
    again = await klaviyo.post(
        KLAVIYO_AUTHORIZE, data={"request_id": request_id, "decision": "approve"}
    )
    assert again.status_code == 400
