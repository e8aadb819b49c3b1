"""The token and revocation endpoints: PKCE, codes, client auth, refresh rotation, revoke."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.constant_contact.store import ConstantContactState
from keygate.sandbox.klaviyo.store import KlaviyoState

from .conftest import REDIRECT_URI
from .oauth_helpers import (
    CC_AUTHORIZE,
    CC_SCOPES,
    CC_TOKEN,
    KLAVIYO_AUTHORIZE,
    KLAVIYO_SCOPES,
    KLAVIYO_TOKEN,
    authorize_params,
    cc_tokens,
    get_code,
    klaviyo_tokens,
    new_verifier,
    token_call,
)

REVISION = {"revision": "2026-01-15"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **REVISION}


async def klaviyo_code(client: httpx.AsyncClient, verifier: str) -> str:
    return await get_code(client, KLAVIYO_AUTHORIZE, authorize_params(KLAVIYO_SCOPES, verifier))


def code_form(code: str, verifier: str | None, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    return form | ({"code_verifier": verifier} if verifier else {})


async def test_klaviyo_code_exchange_answer(klaviyo: httpx.AsyncClient) -> None:
    tokens = await klaviyo_tokens(klaviyo)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == KLAVIYO_SCOPES
    assert tokens["refresh_token"]
    accounts = await klaviyo.get("/api/accounts", headers=bearer(tokens["access_token"]))
    assert accounts.status_code == 200


@pytest.mark.parametrize(
    ("verifier_sent", "error"),
    [
        (None, "invalid_request"),
        ("short", "invalid_request"),
        ("x" * 43 + "!", "invalid_request"),
        ("A" * 64, "invalid_grant"),
    ],
)
async def test_pkce_is_verified(
    klaviyo: httpx.AsyncClient, verifier_sent: str | None, error: str
) -> None:
    code = await klaviyo_code(klaviyo, new_verifier())
    response = await token_call(klaviyo, KLAVIYO_TOKEN, code_form(code, verifier_sent))
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_code_is_single_use(klaviyo: httpx.AsyncClient) -> None:
    verifier = new_verifier()
    code = await klaviyo_code(klaviyo, verifier)
    assert (await token_call(klaviyo, KLAVIYO_TOKEN, code_form(code, verifier))).status_code == 200
    again = await token_call(klaviyo, KLAVIYO_TOKEN, code_form(code, verifier))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_code_expires(klaviyo: httpx.AsyncClient, clock: SandboxClock) -> None:
    verifier = new_verifier()
    code = await klaviyo_code(klaviyo, verifier)
    clock.advance(301)
    response = await token_call(klaviyo, KLAVIYO_TOKEN, code_form(code, verifier))
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The authorization code has expired.",
    }


async def test_redirect_uri_must_match_authorize(klaviyo: httpx.AsyncClient) -> None:
    verifier = new_verifier()
    code = await klaviyo_code(klaviyo, verifier)
    form = code_form(code, verifier, redirect_uri=REDIRECT_URI + "/")
    response = await token_call(klaviyo, KLAVIYO_TOKEN, form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("auth", [None, ("sandbox-client", "wrong"), ("other", "sandbox-secret")])
async def test_client_auth_is_required(
    klaviyo: httpx.AsyncClient, auth: tuple[str, str] | None
) -> None:
    verifier = new_verifier()
    code = await klaviyo_code(klaviyo, verifier)
    response = await token_call(klaviyo, KLAVIYO_TOKEN, code_form(code, verifier), auth=auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_token_endpoint_needs_form_encoding(cc: httpx.AsyncClient) -> None:
    response = await cc.post(
        CC_TOKEN,
        json={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={
            "Authorization": "Basic " + base64.b64encode(b"sandbox-client:sandbox-secret").decode()
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_unsupported_grant_type(cc: httpx.AsyncClient) -> None:
    response = await token_call(cc, CC_TOKEN, {"grant_type": "password"})
    assert response.json()["error"] == "unsupported_grant_type"


async def test_cc_tokens_are_jwts_for_a_day(cc: httpx.AsyncClient) -> None:
    tokens = await cc_tokens(cc)
    parts = tokens["access_token"].split(".")
    assert len(parts) == 3
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert header["typ"] == "JWT"
    assert tokens["expires_in"] == 86400
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == CC_SCOPES


async def test_cc_refresh_token_needs_offline_access(cc: httpx.AsyncClient) -> None:
    tokens = await cc_tokens(cc, scope="account_read contact_data")
    assert "refresh_token" not in tokens


async def test_cc_pkce_checked_when_challenge_given(cc: httpx.AsyncClient) -> None:
    code = await get_code(cc, CC_AUTHORIZE, authorize_params(CC_SCOPES, new_verifier()))
    response = await token_call(cc, CC_TOKEN, code_form(code, None))
    assert response.json()["error"] == "invalid_request"


async def test_cc_without_pkce(cc: httpx.AsyncClient) -> None:
    code = await get_code(cc, CC_AUTHORIZE, authorize_params(CC_SCOPES, None))
    response = await token_call(cc, CC_TOKEN, code_form(code, None))
    assert response.status_code == 200


async def refresh(client: httpx.AsyncClient, path: str, token: str) -> httpx.Response:
    return await token_call(client, path, {"grant_type": "refresh_token", "refresh_token": token})


async def test_cc_rotating_refresh_tokens(cc: httpx.AsyncClient) -> None:
    first = await cc_tokens(cc)
    rotated = await refresh(cc, CC_TOKEN, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    reused = await refresh(cc, CC_TOKEN, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_description"]
    assert (await refresh(cc, CC_TOKEN, second["refresh_token"])).status_code == 200


async def test_cc_long_lived_refresh_tokens(
    cc: httpx.AsyncClient, cc_state: ConstantContactState
) -> None:
    await cc.post("/_sandbox/config", json={"rotating_refresh_tokens": False})
    first = await cc_tokens(cc)
    for _ in range(2):
        again = await refresh(cc, CC_TOKEN, first["refresh_token"])
        assert again.status_code == 200
        assert again.json()["refresh_token"] == first["refresh_token"]
    assert cc_state.stats.token_requests["refresh_token"] == 2


async def test_klaviyo_refresh_returns_same_token_by_default(klaviyo: httpx.AsyncClient) -> None:
    tokens = await klaviyo_tokens(klaviyo)
    again = await refresh(klaviyo, KLAVIYO_TOKEN, tokens["refresh_token"])
    assert again.json()["refresh_token"] == tokens["refresh_token"]
    assert again.json()["expires_in"] == 3600


async def test_klaviyo_rotation_is_configurable(
    klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState
) -> None:
    klaviyo_state.config.rotating_refresh_tokens = True
    tokens = await klaviyo_tokens(klaviyo)
    rotated = await refresh(klaviyo, KLAVIYO_TOKEN, tokens["refresh_token"])
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]
    assert (await refresh(klaviyo, KLAVIYO_TOKEN, tokens["refresh_token"])).json()[
        "error"
    ] == "invalid_grant"


async def test_access_token_expires(klaviyo: httpx.AsyncClient, clock: SandboxClock) -> None:
    tokens = await klaviyo_tokens(klaviyo)
    clock.advance(3600)
    response = await klaviyo.get("/api/accounts", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    fresh = (await refresh(klaviyo, KLAVIYO_TOKEN, tokens["refresh_token"])).json()
    assert (
        await klaviyo.get("/api/accounts", headers=bearer(fresh["access_token"]))
    ).status_code == 200


async def test_unused_refresh_token_dies(klaviyo: httpx.AsyncClient, clock: SandboxClock) -> None:
    tokens = await klaviyo_tokens(klaviyo)
    clock.advance(90 * 86400 + 1)
    assert (await refresh(klaviyo, KLAVIYO_TOKEN, tokens["refresh_token"])).json()[
        "error"
    ] == "invalid_grant"


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
async def test_klaviyo_revoke(
    klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState, which: str
) -> None:
    tokens = await klaviyo_tokens(klaviyo)
    form = {"token_type_hint": which, "token": tokens[which]}
    assert (await token_call(klaviyo, "/oauth/revoke", form, auth=None)).status_code == 401
    response = await token_call(klaviyo, "/oauth/revoke", form)
    assert response.status_code == 200
    assert klaviyo_state.stats.revoke_calls == 2
    api = await klaviyo.get("/api/accounts", headers=bearer(tokens["access_token"]))
    assert api.status_code == 401
    assert (await refresh(klaviyo, KLAVIYO_TOKEN, tokens["refresh_token"])).json()[
        "error"
    ] == "invalid_grant"


async def test_revoke_unknown_token_is_ok(klaviyo: httpx.AsyncClient) -> None:
    form = {"token_type_hint": "refresh_token", "token": "never-issued"}
    assert (await token_call(klaviyo, "/oauth/revoke", form)).status_code == 200


async def test_cc_has_no_revoke_endpoint(cc: httpx.AsyncClient) -> None:
    assert (await token_call(cc, "/oauth/revoke", {"token": "x"})).status_code == 404
