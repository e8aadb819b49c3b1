"""Constant Contact's gate: bearer tokens (401 object body), scopes and per-token throttling."""

from __future__ import annotations

import httpx
import pytest

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.constant_contact.store import ConstantContactState

UNAUTHORIZED = {"error_key": "unauthorized", "error_message": "Unauthorized"}


async def minted(cc: httpx.AsyncClient, scope: str | None = None) -> dict[str, str]:
    body = {"scope": scope} if scope else {}
    tokens: dict[str, str] = (await cc.post("/_sandbox/tokens", json=body)).json()
    return tokens


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic c2FuZGJveA==", "Bearer "])
async def test_missing_or_wrong_token(cc: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await cc.get("/v3/contacts", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


async def test_expired_and_revoked_tokens(cc: httpx.AsyncClient, clock: SandboxClock) -> None:
    tokens = await minted(cc)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await cc.get("/v3/account/summary", headers=headers)).status_code == 200
    clock.advance(86400)
    assert (await cc.get("/v3/account/summary", headers=headers)).json() == UNAUTHORIZED
    fresh = await minted(cc)
    await cc.post("/_sandbox/revoke_all")
    revoked = await cc.get(
        "/v3/account/summary", headers={"Authorization": f"Bearer {fresh['access_token']}"}
    )
    assert revoked.status_code == 401


async def test_scope_is_enforced(cc: httpx.AsyncClient) -> None:
    tokens = await minted(cc, "account_read")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await cc.get("/v3/account/summary", headers=headers)).status_code == 200
    response = await cc.get("/v3/contacts", headers=headers)
    assert response.status_code == 403
    assert response.json()[0]["error_key"] == "forbidden"


async def test_four_requests_per_second(
    cc: httpx.AsyncClient, cc_state: ConstantContactState, clock: SandboxClock
) -> None:
    tokens = await minted(cc)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    for _ in range(4):
        assert (await cc.get("/v3/contacts", headers=headers)).status_code == 200
    throttled = await cc.get("/v3/contacts", headers=headers)
    assert throttled.status_code == 429
    assert throttled.json() == {"error_key": "throttled", "error_message": "Too Many Requests"}
    assert "retry-after" not in throttled.headers
    assert not any(name.lower().startswith("ratelimit") for name in throttled.headers)
    other = await minted(cc)
    assert (
        await cc.get("/v3/contacts", headers={"Authorization": f"Bearer {other['access_token']}"})
    ).status_code == 200
    clock.advance(1)
    assert (await cc.get("/v3/contacts", headers=headers)).status_code == 200
    assert cc_state.stats.throttled_calls == 1


async def test_daily_quota(
    cc: httpx.AsyncClient, cc_state: ConstantContactState, clock: SandboxClock
) -> None:
    tokens = await minted(cc)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await cc.get("/v3/contacts", headers=headers)).status_code == 200
    # Fill the day's window directly: 10,000 real calls would only slow the suite down.
    day_key = next(key for key in cc_state.limiter.counts if key[1] == 86_400)
    cc_state.limiter.counts[day_key] = 10_000
    clock.advance(1)
    response = await cc.get("/v3/contacts", headers=headers)
    assert response.status_code == 429
    assert response.json() == {"error_key": "quota_exceeded", "error_message": "Limit Exceeded"}


async def test_throttling_can_be_off(cc: httpx.AsyncClient) -> None:
    await cc.post("/_sandbox/config", json={"rate_limit": False})
    headers = {"Authorization": f"Bearer {(await minted(cc))['access_token']}"}
    for _ in range(10):
        assert (await cc.get("/v3/contacts", headers=headers)).status_code == 200
