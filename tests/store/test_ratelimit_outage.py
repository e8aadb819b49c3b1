"""The fleet-wide rate limit during a PostgreSQL outage: each process limits on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keygate.gateway.ratelimit import FleetRateLimiter
from tests.support.harness import KeygateHarness, upstream_overrides
from tests.support.postgres import ThrowawayPostgres, postgres_bin
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server the test may stop."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (make test installs them)")
    server = ThrowawayPostgres(bin_dir)
    yield server
    server.destroy()


@pytest.mark.timeout(120)
def test_without_the_database_the_limit_falls_back_to_this_process(
    postgres: ThrowawayPostgres, tmp_path: Path, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    keygate = KeygateHarness(
        tmp_path,
        postgres.url,
        apps=upstream_overrides(upstream[1].url),
        rate_limit_per_second=0.05,
        rate_limit_burst=3,
    )
    try:
        assert isinstance(keygate.app._key_limit, FleetRateLimiter)
        tenant = keygate.tenant()
        keygate.import_connection(tenant, "klaviyo", {"access_token": "a"})
        assert tenant.http.get("/klaviyo/api/x").status_code == 200  # the route is now cached
        postgres.stop()
        statuses = [tenant.http.get("/klaviyo/api/x").status_code for _ in range(8)]
        tenant.close()
    finally:
        keygate.stop()
    # Not 503 for want of the shared bucket, and not unlimited: the local bucket (burst 3),
    # after whatever this process had leased already.
    assert set(statuses) == {200, 429}, statuses
    assert 3 <= statuses.count(200) <= 5, statuses
    assert statuses[-1] == 429, statuses
