"""Klaviyo's gate: credentials, the `revision` header, scopes and fixed-window rate limits."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.klaviyo.gate import PUBLISHED_REVISIONS
from keygate.sandbox.klaviyo.store import KlaviyoState

from .specs import validate_klaviyo

PRIVATE_KEY = "Klaviyo-API-Key pk_sandbox_0123456789abcdef"


def headers(
    authorization: str | None = PRIVATE_KEY, revision: str | None = "2026-01-15"
) -> dict[str, str]:
    built = {}
    if authorization is not None:
        built["Authorization"] = authorization
    if revision is not None:
        built["revision"] = revision
    return built


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "not_authenticated"),
        ("Basic abc", "not_authenticated"),
        ("Klaviyo-API-Key pk_wrong", "authentication_failed"),
        ("Bearer not-a-token", "authentication_failed"),
    ],
)
async def test_bad_credentials_401(
    klaviyo: httpx.AsyncClient, authorization: str | None, code: str
) -> None:
    response = await klaviyo.get("/api/profiles", headers=headers(authorization))
    assert response.status_code == 401
    validate_klaviyo("/api/profiles", "get", response)
    assert response.json()["errors"][0]["code"] == code


@pytest.mark.parametrize(
    ("revision", "status"),
    [
        (None, 400),
        ("2026-1-15", 400),
        ("yesterday", 400),
        ("2026-02-30", 400),
        ("2026-10-16", 404),
        ("2021-01-01", 404),
    ],
)
async def test_revision_header(
    klaviyo: httpx.AsyncClient, revision: str | None, status: int
) -> None:
    response = await klaviyo.get("/api/profiles", headers=headers(revision=revision))
    assert response.status_code == status
    validate_klaviyo("/api/profiles", "get", response)
    if status == 400:
        assert response.json()["errors"][0]["source"] == {"parameter": "revision"}


@pytest.mark.parametrize(
    "revision", ["2026-10-15", "2026-07-15", "2026-01-15", "2024-10-15.pre", "2022-10-17"]
)
async def test_supported_revisions(klaviyo: httpx.AsyncClient, revision: str) -> None:
    response = await klaviyo.get("/api/profiles", headers=headers(revision=revision))
    assert response.status_code == 200


async def test_every_published_revision_is_accepted(klaviyo: httpx.AsyncClient) -> None:
    for day in PUBLISHED_REVISIONS:
        response = await klaviyo.get("/api/profiles", headers=headers(revision=day.isoformat()))
        assert response.status_code == 200, day


async def test_a_revision_is_accepted_from_its_publication_date(
    klaviyo: httpx.AsyncClient, clock: SandboxClock
) -> None:
    """Before 2026-10-15 Klaviyo had not published that revision: the sandbox follows its clock."""
    clock.freeze(datetime(2026, 10, 14, 12, tzinfo=UTC).timestamp())
    early = await klaviyo.get("/api/profiles", headers=headers(revision="2026-10-15"))
    assert early.status_code == 404
    assert (await klaviyo.get("/api/profiles", headers=headers(revision="2026-07-15"))).is_success
    clock.advance(86400)
    on_the_day = await klaviyo.get("/api/profiles", headers=headers(revision="2026-10-15"))
    assert on_the_day.status_code == 200


async def test_oauth_scope_is_enforced(klaviyo: httpx.AsyncClient) -> None:
    minted = (await klaviyo.post("/_sandbox/tokens", json={"scope": "profiles:read"})).json()
    bearer = headers(f"Bearer {minted['access_token']}")
    assert (await klaviyo.get("/api/profiles", headers=bearer)).status_code == 200
    response = await klaviyo.get("/api/lists", headers=bearer)
    assert response.status_code == 403
    validate_klaviyo("/api/lists", "get", response)
    assert response.json()["errors"][0]["code"] == "permission_denied"


async def test_rate_limit_headers_on_success(klaviyo: httpx.AsyncClient) -> None:
    response = await klaviyo.get("/api/profiles", headers=headers())
    assert response.headers["RateLimit-Limit"] == "75"
    assert response.headers["RateLimit-Remaining"] == "74"
    assert response.headers["RateLimit-Reset"] == "1"
    assert "Retry-After" not in response.headers


async def test_accounts_burst_of_one_per_second(
    klaviyo: httpx.AsyncClient, clock: SandboxClock
) -> None:
    assert (await klaviyo.get("/api/accounts", headers=headers())).status_code == 200
    throttled = await klaviyo.get("/api/accounts", headers=headers())
    assert throttled.status_code == 429
    validate_klaviyo("/api/accounts", "get", throttled)
    assert throttled.json()["errors"][0]["code"] == "throttled"
    assert throttled.headers["Retry-After"] == "1"
    clock.advance(1)
    assert (await klaviyo.get("/api/accounts", headers=headers())).status_code == 200


async def test_profiles_burst_then_steady(klaviyo: httpx.AsyncClient, clock: SandboxClock) -> None:
    for _ in range(75):
        assert (await klaviyo.get("/api/profiles", headers=headers())).status_code == 200
    assert (await klaviyo.get("/api/profiles", headers=headers())).status_code == 429
    # Other endpoint buckets are independent.
    assert (await klaviyo.get("/api/accounts", headers=headers())).status_code == 200
    for _ in range(9):
        clock.advance(1)
        for _ in range(75):
            await klaviyo.get("/api/profiles", headers=headers())
    clock.advance(1)
    steady = await klaviyo.get("/api/profiles", headers=headers())
    assert steady.status_code == 429
    assert int(steady.headers["Retry-After"]) > 1


async def test_installs_are_limited_separately(klaviyo: httpx.AsyncClient) -> None:
    first = (await klaviyo.post("/_sandbox/tokens")).json()["access_token"]
    second = (await klaviyo.post("/_sandbox/tokens")).json()["access_token"]
    assert (
        await klaviyo.get("/api/accounts", headers=headers(f"Bearer {first}"))
    ).status_code == 200
    assert (
        await klaviyo.get("/api/accounts", headers=headers(f"Bearer {second}"))
    ).status_code == 200
    assert (
        await klaviyo.get("/api/accounts", headers=headers(f"Bearer {first}"))
    ).status_code == 429


async def test_rate_limit_can_be_off(
    klaviyo: httpx.AsyncClient, klaviyo_state: KlaviyoState
) -> None:
    await klaviyo.post("/_sandbox/config", json={"rate_limit": False})
    for _ in range(3):
        response = await klaviyo.get("/api/accounts", headers=headers())
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers
    assert klaviyo_state.stats.throttled_calls == 0
