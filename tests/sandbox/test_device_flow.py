"""Constant Contact's device authorization grant (RFC 8628)."""

from __future__ import annotations

import httpx

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.constant_contact.store import ConstantContactState

from .oauth_helpers import CC_SCOPES, CC_TOKEN, token_call

DEVICE_AUTHORIZE = "/oauth2/default/v1/device/authorize"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def start(cc: httpx.AsyncClient) -> dict[str, object]:
    response = await cc.post(
        DEVICE_AUTHORIZE, data={"client_id": "sandbox-client", "scope": CC_SCOPES}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def poll(cc: httpx.AsyncClient, device_code: object) -> httpx.Response:
    return await token_call(
        cc, CC_TOKEN, {"grant_type": DEVICE_GRANT, "device_code": str(device_code)}
    )


async def test_device_flow_answer_shape(cc: httpx.AsyncClient) -> None:
    body = await start(cc)
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert body["verification_uri"] == "http://cc.test/oauth2/default/v1/device"
    assert str(body["verification_uri_complete"]).endswith(f"?user_code={body['user_code']}")
    assert body["interval"] == 5
    assert body["expires_in"] == 600


async def test_pending_then_approved(cc: httpx.AsyncClient) -> None:
    body = await start(cc)
    pending = await poll(cc, body["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    page = await cc.get(str(body["verification_uri_complete"]))
    assert page.status_code == 200
    assert 'id="approve"' in page.text
    decided = await cc.post(
        "/oauth2/default/v1/device", data={"user_code": body["user_code"], "decision": "approve"}
    )
    assert decided.status_code == 200
    tokens = await poll(cc, body["device_code"])
    assert tokens.status_code == 200
    assert tokens.json()["refresh_token"]
    assert len(tokens.json()["access_token"].split(".")) == 3
    assert (await poll(cc, body["device_code"])).json()["error"] == "invalid_grant"


async def test_denied(cc: httpx.AsyncClient) -> None:
    body = await start(cc)
    await cc.post(
        "/oauth2/default/v1/device", data={"user_code": body["user_code"], "decision": "deny"}
    )
    assert (await poll(cc, body["device_code"])).json()["error"] == "access_denied"


async def test_expired(cc: httpx.AsyncClient, clock: SandboxClock) -> None:
    body = await start(cc)
    clock.advance(601)
    assert (await poll(cc, body["device_code"])).json()["error"] == "expired_token"
    late = await cc.post(
        "/oauth2/default/v1/device", data={"user_code": body["user_code"], "decision": "approve"}
    )
    assert late.status_code == 404


async def test_unknown_client(cc: httpx.AsyncClient) -> None:
    response = await cc.post(DEVICE_AUTHORIZE, data={"client_id": "nobody", "scope": CC_SCOPES})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_auto_approve(cc: httpx.AsyncClient, cc_state: ConstantContactState) -> None:
    cc_state.config.auto_approve = True
    body = await start(cc)
    assert (await poll(cc, body["device_code"])).status_code == 200
    assert cc_state.stats.device_authorize_calls == 1
    assert cc_state.stats.token_requests[DEVICE_GRANT] == 1
