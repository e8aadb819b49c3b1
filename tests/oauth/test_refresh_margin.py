"""When a token is refreshed: `KEYGATE_REFRESH_MARGIN_SECONDS` before expiry, but at most half
its lifetime before, so each token is refreshed once however short it lives.

The sandboxed Keygate keeps the default margin (300 s). Time is the shared clock of Keygate and
the sandboxes, stopped and moved by the tests, so an hour-long token lives its life at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from keygate.oauth.lifecycle import refresh_margin
from tests.support.harness import Tenant
from tests.support.sandboxes import SandboxedKeygate

PATH = "/klaviyo/api/accounts"
# (token lifetime, its age when it falls due for refresh), both in seconds, at the default
# margin of 300 s: half-life for tokens shorter than 600 s, 300 s before expiry for longer ones.
LIFETIMES = [(2, 1.0), (60, 30.0), (3600, 3300.0)]


@pytest.fixture
def frozen(sandboxed: SandboxedKeygate) -> Iterator[tuple[SandboxedKeygate, Tenant]]:
    """The sandboxed Keygate with its clock stopped (only the test moves it), a fresh tenant."""
    sandboxed.freeze_time()
    made = sandboxed.tenant()
    yield sandboxed, made
    made.close()
    sandboxed.resume_time()
    sandboxed.klaviyo.admin("config", {"access_token_ttl": None})


def counts(sandboxed: SandboxedKeygate) -> tuple[int, int]:
    """(token requests, API calls) the Klaviyo sandbox has answered so far."""
    stats = sandboxed.klaviyo.admin("stats")
    return int(stats["token_requests_total"]), int(stats["api_calls"])


def connection_with_lifetime(sandboxed: SandboxedKeygate, tenant: Tenant, lifetime: int) -> str:
    """A Klaviyo connection whose tokens (this one and each refreshed one) live `lifetime` s."""
    sandboxed.klaviyo.admin("config", {"access_token_ttl": lifetime})
    return sandboxed.oauth_connection(tenant, "klaviyo")


def burst(sandboxed: SandboxedKeygate, tenant: Tenant, connection: str, count: int) -> list[int]:
    """`count` concurrent gateway requests on one connection; their statuses."""

    async def run() -> list[int]:
        async with httpx.AsyncClient(
            base_url=sandboxed.keygate.url,
            headers={"Authorization": f"Bearer {tenant.key}", "Maton-Connection": connection},
            limits=httpx.Limits(max_connections=count),
            timeout=60,
        ) as client:
            responses = await asyncio.gather(*(client.get(PATH) for _ in range(count)))
        return [r.status_code for r in responses]

    return asyncio.run(run())


@pytest.mark.parametrize(("lifetime", "due_at"), LIFETIMES)
def test_steady_traffic_refreshes_each_token_once(
    frozen: tuple[SandboxedKeygate, Tenant], lifetime: int, due_at: float
) -> None:
    sandboxed, tenant = frozen
    chosen = {"Maton-Connection": connection_with_lifetime(sandboxed, tenant, lifetime)}
    tokens_before, calls_before = counts(sandboxed)
    sent = 0
    for token in range(3):
        # Requests spread over the token's life until it falls due: none refreshes it.
        for _ in range(9):
            sandboxed.advance(due_at / 10)
            assert tenant.http.get(PATH, headers=chosen).status_code == 200
            sent += 1
        assert counts(sandboxed)[0] - tokens_before == token, f"token {token} refreshed early"
        # Past due, still before expiry: the next request refreshes it, once.
        sandboxed.advance(due_at / 10 + (lifetime - due_at) / 2)
        assert tenant.http.get(PATH, headers=chosen).status_code == 200
        sent += 1
        assert counts(sandboxed)[0] - tokens_before == token + 1
    # The provider never saw an expired token (that would have cost a 401 and a replay).
    assert counts(sandboxed)[1] - calls_before == sent


@pytest.mark.parametrize(("lifetime", "due_at"), LIFETIMES)
def test_a_burst_makes_one_refresh_when_due_and_none_before(
    frozen: tuple[SandboxedKeygate, Tenant], lifetime: int, due_at: float
) -> None:
    sandboxed, tenant = frozen
    connection = connection_with_lifetime(sandboxed, tenant, lifetime)
    before, _ = counts(sandboxed)
    assert burst(sandboxed, tenant, connection, 40) == [200] * 40
    assert counts(sandboxed)[0] == before  # a fresh token is not refreshed
    sandboxed.advance(due_at + (lifetime - due_at) / 2)
    assert burst(sandboxed, tenant, connection, 40) == [200] * 40
    assert counts(sandboxed)[0] == before + 1  # due: one refresh for the whole burst
    assert burst(sandboxed, tenant, connection, 40) == [200] * 40
    assert counts(sandboxed)[0] == before + 1  # and the new token is fresh


def test_a_cached_route_is_refreshed_when_its_token_falls_due(
    sandboxed: SandboxedKeygate,
) -> None:
    """On the wall clock: the gateway's cached route notices by itself that its token is due."""
    tenant = sandboxed.tenant()
    try:
        chosen = {"Maton-Connection": connection_with_lifetime(sandboxed, tenant, 2)}
        stored = time.monotonic()  # the token was obtained before this
        tokens_before, calls_before = counts(sandboxed)
        # Cached as a route. (On a machine so slow that this request comes after the token is
        # due, it refreshes here instead, and the next one does not: the counts hold.)
        assert tenant.http.get(PATH, headers=chosen).status_code == 200
        time.sleep(max(0.0, stored + 1.2 - time.monotonic()))  # a 2 s token is due at 1 s
        assert tenant.http.get(PATH, headers=chosen).status_code == 200
        tokens, calls = counts(sandboxed)
        assert (tokens - tokens_before, calls - calls_before) == (1, 2)
    finally:
        tenant.close()
        sandboxed.klaviyo.admin("config", {"access_token_ttl": None})


@pytest.mark.parametrize(
    ("lifetime", "setting", "margin"),
    [(2, 300, 1.0), (60, 300, 30.0), (3600, 300, 300.0), (3600, 0, 0.0), (-10, 300, 0.0)],
)
def test_the_margin_is_the_setting_but_at_most_half_the_lifetime(
    lifetime: int, setting: int, margin: float
) -> None:
    issued = datetime(2026, 12, 1, tzinfo=UTC)
    assert refresh_margin(setting, issued, issued + timedelta(seconds=lifetime)) == margin


def test_a_token_of_unknown_age_gets_the_whole_margin() -> None:
    """Rows stored before Keygate recorded when a token was obtained."""
    assert refresh_margin(300, None, datetime(2026, 12, 1, tzinfo=UTC)) == 300
