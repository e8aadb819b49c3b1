"""Keygate's own limits: per-key rate (429 rate_limited, Retry-After) and streamed body size."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from keygate.gateway.ratelimit import KeyRateLimiter
from tests.gateway.test_errors import assert_error
from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, upstream_overrides
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, upstream: tuple[RecordingUpstream, ServerThread]
) -> Iterator[KeygateHarness]:
    """Keygate allowing each key 2 requests per second (burst 3) and 1 MiB request bodies."""
    directory = tmp_path_factory.mktemp("limited")
    harness = KeygateHarness(
        directory,
        fresh_database(directory, "kg_limited"),
        apps=upstream_overrides(upstream[1].url),
        rate_limit_per_second=2.0,
        rate_limit_burst=3,
        max_request_body=1024 * 1024,
    )
    yield harness
    harness.stop()


def test_over_the_limit_gives_429_with_retry_after(limited: KeygateHarness) -> None:
    first, second = limited.tenant(), limited.tenant()
    try:
        limited.import_connection(first, "klaviyo", {"access_token": "a"})
        limited.import_connection(second, "klaviyo", {"access_token": "b"})
        statuses = [first.http.get("/klaviyo/api/x").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = first.http.get("/klaviyo/api/x")
        assert_error(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        # Another key has its own bucket.
        assert second.http.get("/klaviyo/api/x").status_code == 200
        time.sleep(0.6)
        assert first.http.get("/klaviyo/api/x").status_code == 200
    finally:
        first.close()
        second.close()


def test_bucket_refills_at_the_configured_rate() -> None:
    limiter = KeyRateLimiter(rate=10, burst=1)
    limiter.check("k", now=0.0)
    with pytest.raises(Exception, match="limit of 10 requests per second"):
        limiter.check("k", now=0.01)
    limiter.check("k", now=0.2)
    assert not KeyRateLimiter(rate=0, burst=0).enabled


def test_streamed_body_over_the_limit_gives_413(
    limited: KeygateHarness, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    tenant = limited.tenant()
    try:
        limited.import_connection(tenant, "klaviyo", {"access_token": "a"})

        def chunks() -> Iterator[bytes]:
            for _ in range(8):  # 2 MiB, chunked: no Content-Length to refuse up front
                yield b"x" * (256 * 1024)

        response = tenant.http.post("/klaviyo/api/upload", content=chunks())
        assert_error(response, 413, "body_too_large")
        assert "1048576" in response.json()["error"]["message"]
        time.sleep(0.6)  # let the rate bucket refill for a small request
        small = tenant.http.post("/klaviyo/api/upload", content=iter([b"y" * 1000]))
        assert small.status_code == 200
        assert small.json()["body_bytes"] == 1000
    finally:
        tenant.close()
