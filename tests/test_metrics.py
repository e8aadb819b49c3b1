"""`/metrics` of a `keygate serve` with several workers: one set, summed over its processes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, upstream_overrides
from tests.support.processes import Deployment
from tests.support.sandboxes import SandboxedKeygate
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

REQUESTS = 60
CATALOG = Path(__file__).parent / "support" / "catalog"


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


def _delta(before: dict[str, float], after: dict[str, float], series: str) -> float:
    return after.get(series, 0) - before.get(series, 0)


def test_refreshes_upstream_errors_refusals_and_reloads_are_counted(
    tmp_path: Path, sandboxed: SandboxedKeygate, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    keygate = sandboxed.keygate
    tenant = sandboxed.tenant()
    limited = KeygateHarness(
        tmp_path,
        fresh_database(tmp_path, "kg_metrics_limited"),
        apps=upstream_overrides(upstream[1].url),
        catalog_dir=CATALOG,
        rate_limit_per_second=0.01,
        rate_limit_burst=1,
    )
    caller = limited.tenant()
    try:
        tokens = sandboxed.cc.mint_tokens()
        fine = keygate.import_connection(
            tenant,
            "constant-contact",
            {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]},
            expires_in=-10,
        )
        refused = keygate.import_connection(
            tenant,
            "constant-contact",
            {"access_token": "gone", "refresh_token": "not-a-refresh-token"},
            expires_in=-10,
        )
        limited.import_connection(caller, "closed-port", {"api_key": "k"}, method="API_KEY")
        before = _scrape(keygate.url)
        path = "/constant-contact/v3/contacts"
        assert tenant.http.get(path, headers={"Maton-Connection": fine.id}).status_code == 200
        assert tenant.http.get(path, headers={"Maton-Connection": refused.id}).status_code == 424
        after = _scrape(keygate.url)
        cc = '{app="constant-contact"}'
        assert _delta(before, after, f"keygate_refresh_attempts_total{cc}") == 2
        assert _delta(before, after, f"keygate_refresh_failures_total{cc}") == 1
        assert _delta(before, after, f"keygate_refresh_seconds_count{cc}") == 2
        # The failed refresh marked the connection FAILED: a write, so a cache reload here.
        assert _delta(before, after, 'keygate_cache_reloads_total{reason="local"}') >= 1

        # The same process counts for every app in it (one set of metrics per process here).
        before = _scrape(limited.url)
        assert caller.http.get("/closed-port/x").status_code == 502
        assert caller.http.get("/closed-port/x").status_code == 429
        after = _scrape(limited.url)
        assert _delta(before, after, 'keygate_upstream_errors_total{kind="unreachable"}') == 1
        assert _delta(before, after, 'keygate_rate_limit_refusals_total{scope="key"}') == 1
    finally:
        caller.close()
        limited.stop()
        tenant.close()


_CRASHING_WORKER = """
import os, sys
from pathlib import Path
from keygate import metrics
metrics.use_directory(Path(sys.argv[1]))
metrics.process_started()
metrics.store_unreachable(outage_began=True)  # this worker finds the database down...
os._exit(1)  # ...and dies without a word (SIGKILL, a crash): no process_exited()
"""
_SCRAPING_WORKER = """
import sys
from pathlib import Path
from keygate import metrics
metrics.use_directory(Path(sys.argv[1]))
metrics.process_started()
sys.stdout.write(metrics.render().decode())
"""


def test_a_dead_workers_counts_stay_and_its_gauges_go(tmp_path: Path) -> None:
    # Processes of their own: the test process keeps its metrics in memory.
    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert python(_CRASHING_WORKER).returncode == 1
    scraped = python(_SCRAPING_WORKER)
    assert scraped.returncode == 0, scraped.stderr
    series = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in scraped.stdout.splitlines()
        if line and not line.startswith("#")
    }
    assert series["keygate_store_up"] == 1  # the live worker's; the dead one's 0 is dropped
    assert series["keygate_store_outages_total"] == 1  # what the dead worker counted stays
    assert series["keygate_store_unavailable_total"] == 1
