"""Token lifecycle against the provider sandboxes: refresh, single flight, failures, revoke."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.test_errors import assert_error
from tests.support.harness import Tenant
from tests.support.sandboxes import Sandbox, SandboxedKeygate

APP_PATH = {
    "klaviyo": "/klaviyo/api/accounts",
    "constant-contact": "/constant-contact/v3/account/summary",
}


@pytest.fixture
def env(sandboxed: SandboxedKeygate) -> Iterator[tuple[SandboxedKeygate, Tenant]]:
    """The sandboxed Keygate and a fresh tenant; sandbox faults, config and time restored after."""
    made = sandboxed.tenant()
    yield sandboxed, made
    made.close()
    sandboxed.resume_time()
    for sandbox in (sandboxed.klaviyo, sandboxed.cc):
        sandbox.admin("faults", {"token_endpoint": "ok"})
        sandbox.admin("config", {"access_token_ttl": None})


def token_requests(sandbox: Sandbox) -> int:
    """How many token-endpoint calls the sandbox has answered so far."""
    return int(sandbox.admin("stats")["token_requests_total"])


@pytest.mark.parametrize("app", ["klaviyo", "constant-contact"])
def test_concurrent_requests_on_expired_token_share_one_refresh(
    env: tuple[SandboxedKeygate, Tenant], app: str
) -> None:
    sandboxed, tenant = env
    sandbox = sandboxed.sandbox(app)
    conn = sandboxed.oauth_connection(tenant, app, expires_in=-10)
    sandbox.admin("expire_access_tokens", {})
    sandbox.admin("faults", {"token_endpoint": "slow", "token_delay": 0.3})
    before = token_requests(sandbox)

    async def storm() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=sandboxed.keygate.url,
            headers={"Authorization": f"Bearer {tenant.key}", "Maton-Connection": conn},
            limits=limits,
            timeout=60,
        ) as client:
            responses = await asyncio.gather(*(client.get(APP_PATH[app]) for _ in range(200)))
        return [r.status_code for r in responses]

    statuses = asyncio.run(storm())
    assert statuses == [200] * 200
    assert token_requests(sandbox) - before == 1


def cached_route_then_expired(sandboxed: SandboxedKeygate, tenant: Tenant) -> dict[str, str]:
    """A Constant Contact connection whose token Keygate still holds (a first request left it
    a cached route) but the provider has expired; returns the headers that choose it."""
    conn = sandboxed.oauth_connection(tenant, "constant-contact")
    chosen = {"Maton-Connection": conn}
    assert tenant.http.get(APP_PATH["constant-contact"], headers=chosen).status_code == 200
    sandboxed.cc.admin("expire_access_tokens", {})
    return chosen


def test_upstream_401_triggers_one_refresh_and_one_replay(
    env: tuple[SandboxedKeygate, Tenant],
) -> None:
    sandboxed, tenant = env
    chosen = cached_route_then_expired(sandboxed, tenant)
    before = sandboxed.cc.admin("stats")
    response = tenant.http.get(APP_PATH["constant-contact"], headers=chosen)
    after = sandboxed.cc.admin("stats")
    assert response.status_code == 200
    assert after["token_requests_total"] - before["token_requests_total"] == 1
    assert after["api_calls"] - before["api_calls"] == 2  # the 401, then the replay
    # The next request goes out with the new token at once: the stale route was replaced.
    response = tenant.http.get(APP_PATH["constant-contact"], headers=chosen)
    final = sandboxed.cc.admin("stats")
    assert response.status_code == 200
    assert final["token_requests_total"] == after["token_requests_total"]
    assert final["api_calls"] - after["api_calls"] == 1


def test_post_body_is_replayed_after_refresh(env: tuple[SandboxedKeygate, Tenant]) -> None:
    sandboxed, tenant = env
    conn = sandboxed.oauth_connection(tenant, "constant-contact")
    sandboxed.cc.admin("expire_access_tokens", {})
    body = {"name": "Replayed list", "favorite": False}
    response = tenant.http.post(
        "/constant-contact/v3/contact_lists", json=body, headers={"Maton-Connection": conn}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Replayed list"


def test_reused_rotating_refresh_token_ends_failed_with_424(
    env: tuple[SandboxedKeygate, Tenant],
) -> None:
    sandboxed, tenant = env
    conn_id, tokens = sandboxed.minted_connection(tenant, "constant-contact", expires_in=-10)
    # Someone else spends the rotating refresh token first.
    spent = httpx.post(
        f"{sandboxed.cc.url}/oauth2/default/v1/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert spent.status_code == 200
    response = tenant.http.get(APP_PATH["constant-contact"], headers={"Maton-Connection": conn_id})
    error = assert_error(response, 424, "reauthorization_required")
    assert str(error["reconnect_url"]).startswith(f"{sandboxed.keygate.url}/connect?session_token=")
    shown = tenant.http.get(f"/connections/{conn_id}").json()["connection"]
    assert shown["status"] == "FAILED"
    assert shown["error"]["code"] == "reauthorization_required"
    # Asking for it again says the same; the default choice skips it.
    again = tenant.http.get(APP_PATH["constant-contact"], headers={"Maton-Connection": conn_id})
    assert_error(again, 424, "reauthorization_required")
    assert_error(tenant.http.get(APP_PATH["constant-contact"]), 400, "no_active_connection")


def test_failing_token_endpoint_gives_503_then_recovers(
    env: tuple[SandboxedKeygate, Tenant],
) -> None:
    sandboxed, tenant = env
    sandboxed.freeze_time()  # the cooldown lasts until the test moves time past it
    conn = sandboxed.oauth_connection(tenant, "klaviyo", expires_in=-10)
    sandboxed.klaviyo.admin("expire_access_tokens", {})
    sandboxed.klaviyo.admin("faults", {"token_endpoint": "error500"})
    before = token_requests(sandboxed.klaviyo)
    first = tenant.http.get(APP_PATH["klaviyo"], headers={"Maton-Connection": conn})
    assert_error(first, 503, "credentials_unavailable")
    retry_after = int(first.headers["retry-after"])
    assert retry_after >= 1
    # Within the cooldown Keygate does not call the provider again.
    for _ in range(5):
        assert (
            tenant.http.get(APP_PATH["klaviyo"], headers={"Maton-Connection": conn}).status_code
            == 503
        )
    assert token_requests(sandboxed.klaviyo) - before == 1
    assert tenant.http.get(f"/connections/{conn}").json()["connection"]["status"] == "ACTIVE"
    sandboxed.klaviyo.admin("faults", {"token_endpoint": "ok"})
    sandboxed.advance(retry_after)
    assert (
        tenant.http.get(APP_PATH["klaviyo"], headers={"Maton-Connection": conn}).status_code == 200
    )


def test_backoff_grows_while_the_endpoint_stays_down(env: tuple[SandboxedKeygate, Tenant]) -> None:
    sandboxed, tenant = env
    sandboxed.freeze_time()
    conn = sandboxed.oauth_connection(tenant, "klaviyo", expires_in=-10)
    sandboxed.klaviyo.admin("faults", {"token_endpoint": "error500"})
    waits = []
    for _ in range(3):
        response = tenant.http.get(APP_PATH["klaviyo"], headers={"Maton-Connection": conn})
        assert response.status_code == 503
        waits.append(int(response.headers["retry-after"]))
        sandboxed.advance(waits[-1])
    assert waits[0] < waits[2]


def test_delete_revokes_at_the_provider(env: tuple[SandboxedKeygate, Tenant]) -> None:
    sandboxed, tenant = env
    conn_id, tokens = sandboxed.minted_connection(tenant, "klaviyo")
    before = sandboxed.klaviyo.admin("stats")["revoke_calls"]
    assert tenant.http.delete(f"/connections/{conn_id}").json()["connection"]["status"] == "DELETED"
    assert sandboxed.klaviyo.admin("stats")["revoke_calls"] == before + 1
    direct = httpx.get(
        f"{sandboxed.klaviyo.url}/api/accounts",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "revision": "2026-01-15"},
    )
    assert direct.status_code == 401


def test_streamed_body_401_is_passed_on_and_the_token_refreshed_for_the_next_request(
    env: tuple[SandboxedKeygate, Tenant],
) -> None:
    sandboxed, tenant = env
    chosen = cached_route_then_expired(sandboxed, tenant)
    before = token_requests(sandboxed.cc)

    def chunks() -> Iterator[bytes]:
        # Chunked and in two parts a moment apart: Keygate streams it upstream as it arrives,
        # so the body is gone when the 401 comes back and the request cannot be replayed.
        yield b'{"name": "Streamed list",' + b" " * 100_000
        time.sleep(0.2)
        yield b' "favorite": false}'

    response = tenant.http.post(
        "/constant-contact/v3/contact_lists",
        content=chunks(),
        headers={**chosen, "Content-Type": "application/json"},
    )
    assert response.status_code == 401, response.text
    deadline = time.monotonic() + 10
    while token_requests(sandboxed.cc) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert token_requests(sandboxed.cc) - before == 1
    assert tenant.http.get(APP_PATH["constant-contact"], headers=chosen).status_code == 200
    assert token_requests(sandboxed.cc) - before == 1
