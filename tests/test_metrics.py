"""`/metrics` of a `keygate serve` with several workers: one set, summed over its processes."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.processes import Deployment
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

REQUESTS = 60


def _scrape(url: str) -> dict[str, float]:
    """One scrape on a connection of its own (so any worker may answer it): series → value."""
    response = httpx.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }


def _requests(url: str, key: str, count: int) -> list[int]:
    """`count` gateway requests, each on a new connection, 8 at a time."""

    def one(_: int) -> int:
        headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
        return httpx.get(f"{url}/klaviyo/api/profiles", headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def _counted(url: str, expected: float) -> dict[str, float]:
    """Scrape until the server has counted `expected` requests (each worker counts its own
    within 50 ms of answering); a count past it fails at once."""
    deadline = time.monotonic() + 20
    while True:
        series = _scrape(url)
        counted = series.get('keygate_gateway_requests_total{app="klaviyo",status="200"}', 0)
        assert counted <= expected, series
        if counted == expected:
            return series
        assert time.monotonic() < deadline, series
        time.sleep(0.1)


@pytest.mark.timeout(180)
def test_two_workers_show_one_set_of_metrics_that_counts_every_request_once(
    tmp_path: Path, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    deployment = Deployment(
        tmp_path, fresh_database(tmp_path, "kg_metrics_workers"), upstream[1], "klaviyo"
    )
    key, _ = deployment.prepare({"access_token": "metrics-token"}, expires_in=3600)
    metrics_dir = tmp_path / "metrics"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    server = deployment.serve(workers=2, extra_env=env)
    try:
        assert _requests(deployment.url, key, REQUESTS) == [200] * REQUESTS
        _counted(deployment.url, REQUESTS)
        # Whichever worker answers, every scrape shows the same sums, with no per-process label.
        for _ in range(10):
            series = _scrape(deployment.url)
            assert series['keygate_gateway_requests_total{app="klaviyo",status="200"}'] == REQUESTS
            assert series['keygate_gateway_request_seconds_count{app="klaviyo"}'] == REQUESTS
            assert series['keygate_gateway_request_seconds_bucket{app="klaviyo",le="+Inf"}'] == (
                REQUESTS
            )
            assert series["keygate_store_up"] == 1
            assert not [name for name in series if "pid=" in name]
    finally:
        server.stop()
    # Both workers answered part of the requests (each logs its pid on access lines).
    pids = set(re.findall(r"pid=(\d+) keygate\.access", server.output()))
    assert len(pids) == 2, server.output()[-2000:]

    # A new server in the same directory starts from nothing: the old files were removed.
    assert list(metrics_dir.glob("*.db"))
    restarted = deployment.serve(workers=2, extra_env=env)
    try:
        assert _requests(deployment.url, key, 5) == [200] * 5
        _counted(deployment.url, 5)
    finally:
        restarted.stop()
