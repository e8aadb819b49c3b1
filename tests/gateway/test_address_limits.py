"""Limits by client address: the control plane's, and failed API-key lookups on both surfaces."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from keygate.settings import Settings
from tests.gateway.test_errors import assert_error
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, upstream_overrides
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[RecordingUpstream, ServerThread]
) -> Iterator[KeygateHarness]:
    """Keygate with tight per-address limits (slow refill: a test's budget stays spent), behind
    a trusted proxy at 127.0.0.1, so each test picks its client address with X-Forwarded-For."""
    directory = tmp_path_factory.mktemp("address-limits")
    harness = KeygateHarness(
        directory,
        fresh_database(directory, "kg_address_limits"),
        apps=upstream_overrides(upstream[1].url),
        control_rate_limit_per_second=0.01,
        control_rate_limit_burst=5,
        unknown_key_rate_limit_per_second=0.01,
        unknown_key_rate_limit_burst=3,
        trusted_proxies=["127.0.0.1"],
    )
    yield harness
    harness.stop()


def from_address(address: str, key: str | None = None) -> dict[str, str]:
    """Headers of a request that the trusted proxy forwarded for `address`."""
    headers = {"X-Forwarded-For": f"203.0.113.9, {address}"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def test_the_control_plane_is_limited_per_address(limited: KeygateHarness) -> None:
    tenant = limited.tenant()
    try:
        with httpx.Client(base_url=limited.url, timeout=30) as client:
            mine = from_address("198.51.100.1", tenant.key)
            statuses = [client.get("/connections", headers=mine).status_code for _ in range(5)]
            assert statuses == [200] * 5
            refused = client.get("/connections", headers=mine)
            assert_error(refused, 429, "rate_limited")
            assert int(refused.headers["retry-after"]) >= 1
            assert "control-plane limit" in refused.json()["error"]["message"]
            # Another address has its own budget; probes and scrapes are never limited.
            other = from_address("198.51.100.2", tenant.key)
            assert client.get("/connections", headers=other).status_code == 200
            for path in ("/healthz", "/readyz", "/metrics"):
                assert client.get(path, headers=mine).status_code == 200, path
    finally:
        tenant.close()


def test_failed_key_lookups_are_limited_per_address(limited: KeygateHarness) -> None:
    """A flood of made-up keys from one address is refused before it reaches the database;
    that address's valid key, already known, still works, as do other addresses."""
    tenant = limited.tenant()
    try:
        limited.import_connection(tenant, "klaviyo", {"access_token": "a"})
        with httpx.Client(base_url=limited.url, timeout=30) as client:
            attacker = "198.51.100.7"
            good = client.get("/klaviyo/api/x", headers=from_address(attacker, tenant.key))
            assert good.status_code == 200, good.text
            for number in range(3):
                made_up = from_address(attacker, f"kg_made-up-{number}")
                assert_error(client.get("/klaviyo/api/x", headers=made_up), 401, "invalid_api_key")
            with limited.counting_statements() as counter:
                refused = client.get("/klaviyo/api/x", headers=from_address(attacker, "kg_next"))
                on_control = client.get("/connections", headers=from_address(attacker, "kg_x"))
            assert_error(refused, 429, "rate_limited")
            assert_error(on_control, 429, "rate_limited")
            assert "unknown or revoked API keys" in refused.json()["error"]["message"]
            assert counter.of_requests() == [], "a refused lookup still queried the store"
            # The key the cache holds is not a lookup: it goes through; and so it does after a
            # write has cleared the cache (it was valid a moment ago: not the flood).
            again = client.get("/klaviyo/api/x", headers=from_address(attacker, tenant.key))
            assert again.status_code == 200, again.text
            limited.tenant().close()  # a write: every process clears its cache
            after_clear = client.get("/klaviyo/api/x", headers=from_address(attacker, tenant.key))
            assert after_clear.status_code == 200, after_clear.text
            still = client.get("/klaviyo/api/x", headers=from_address(attacker, "kg_next"))
            assert_error(still, 429, "rate_limited")
            elsewhere = from_address("198.51.100.8", "kg_made-up-0")
            assert_error(client.get("/klaviyo/api/x", headers=elsewhere), 401, "invalid_api_key")
    finally:
        tenant.close()


def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    """Without KEYGATE_TRUSTED_PROXIES a caller cannot pick a fresh address per request."""
    directory = tmp_path_factory.mktemp("address-untrusted")
    harness = KeygateHarness(
        directory,
        fresh_database(directory, "kg_address_untrusted"),
        apps=upstream_overrides(upstream[1].url),
        unknown_key_rate_limit_per_second=0.01,
        unknown_key_rate_limit_burst=2,
    )
    try:
        with httpx.Client(base_url=harness.url, timeout=30) as client:
            statuses = [
                client.get(
                    "/klaviyo/api/x", headers=from_address(f"198.51.100.{n}", f"kg_bad{n}")
                ).status_code
                for n in range(4)
            ]
        assert statuses == [401, 401, 429, 429]
    finally:
        harness.stop()


def test_trusted_proxies_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYGATE_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    assert Settings().trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]
    monkeypatch.setenv("KEYGATE_TRUSTED_PROXIES", '["::1"]')
    assert Settings().trusted_proxies == ["::1"]
    monkeypatch.setenv("KEYGATE_TRUSTED_PROXIES", "nginx.local")
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings()


def test_the_defaults_limit_the_control_plane_and_unknown_keys() -> None:
    settings = Settings()
    assert settings.control_rate_limit_per_second == 20
    assert settings.control_rate_limit_burst == 100
    assert settings.unknown_key_rate_limit_per_second == 2
    assert settings.unknown_key_rate_limit_burst == 20
    assert settings.rate_limit_per_second == 0  # a per-key limit is the operator's choice
