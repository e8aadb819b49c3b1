"""`GET /logs`: every gateway request of the caller's workspace, with query parameter names
only, filtered and paged; another workspace's requests never show; retention prunes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import fresh_database
from tests.support.harness import KeygateHarness, Tenant, upstream_overrides
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy (the log is written in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def logs(tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = tenant.http.get("/logs", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_gateway_request_is_logged_with_names_not_values(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    response = tenant.http.get(
        "/klaviyo/api/profiles",
        params={"page[cursor]": "secret-cursor-value", "email": "person@example.com"},
        headers={"X-Request-Id": "req-logged-1"},
    )
    assert response.status_code == 200
    found = wait_for(lambda: logs(tenant)["logs"])
    [entry] = found
    assert entry["request_id"] == "req-logged-1"
    assert entry["app"] == "klaviyo"
    assert entry["method"] == "GET"
    assert entry["path"] == "/klaviyo/api/profiles"
    assert entry["query_params"] == ["page[cursor]", "email"]
    assert entry["status"] == 200
    assert entry["status_source"] == "upstream"
    assert entry["connection_id"] == conn.id
    assert entry["api_key_prefix"] == tenant.key[:11]
    assert entry["latency_ms"] >= 0
    datetime.fromisoformat(entry["time"])
    raw = tenant.http.get("/logs").text
    assert "secret-cursor-value" not in raw
    assert "person@example.com" not in raw


def test_keygate_refusals_are_logged_as_keygate_s(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    # No connection for the app: Keygate answers 400 itself, and files it under the caller.
    assert tenant.http.get("/constant-contact/v3/contacts").status_code == 400
    [entry] = wait_for(lambda: logs(tenant)["logs"])
    assert entry["status"] == 400
    assert entry["status_source"] == "keygate"
    assert entry["connection_id"] is None


def test_filters_cursor_and_bad_filters(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    for _ in range(3):
        assert tenant.http.get("/klaviyo/api/profiles").status_code == 200
    assert tenant.http.get("/constant-contact/v3/contacts").status_code == 400
    wait_for(lambda: len(logs(tenant)["logs"]) == 4)

    assert len(logs(tenant, app="klaviyo")["logs"]) == 3
    assert len(logs(tenant, connection=conn.id)["logs"]) == 3
    assert [e["status"] for e in logs(tenant, status="4xx")["logs"]] == [400]
    assert len(logs(tenant, status="2xx")["logs"]) == 3
    assert logs(tenant, status="5xx")["logs"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert logs(tenant, since=future)["logs"] == []
    assert len(logs(tenant, until=future)["logs"]) == 4
    assert logs(tenant, until="2020-01-01T00:00:00Z")["logs"] == []

    first = logs(tenant, limit=3)
    assert len(first["logs"]) == 3
    assert first["next_cursor"]
    rest = logs(tenant, limit=3, cursor=first["next_cursor"])
    assert len(rest["logs"]) == 1
    assert rest["next_cursor"] is None
    ids = [e["request_id"] for e in first["logs"] + rest["logs"]]
    assert len(set(ids)) == 4

    for name, value in (("status", "404"), ("since", "yesterday"), ("until", "12:00 pm")):
        response = tenant.http.get("/logs", params={name: value})
        assert response.status_code == 400
        assert response.headers["keygate-error"] == "invalid_request"
        assert name in response.json()["error"]["message"]
    bad_cursor = tenant.http.get("/logs", params={"cursor": "nope"})
    assert bad_cursor.status_code == 400
    assert tenant.http.get("/logs", headers={"Authorization": "Bearer kg_wrong"}).status_code == 401


def test_another_workspace_never_sees_the_requests(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    assert tenant.http.get("/klaviyo/api/profiles").status_code == 200
    mine = wait_for(lambda: logs(tenant)["logs"])
    other = keygate.tenant()
    try:
        assert logs(other)["logs"] == []
        assert logs(other, connection=mine[0]["connection_id"])["logs"] == []
    finally:
        other.close()


@pytest.fixture
def pruned(keygate: KeygateHarness) -> Any:
    """Runs the pruning once with the given retention and row cap, then restores them."""
    settings = keygate.runtime.settings
    saved = (settings.request_log_retention_days, settings.request_log_max_rows)

    def prune(days: float, rows: int) -> int:
        settings.request_log_retention_days, settings.request_log_max_rows = days, rows
        removed: int = keygate.run(keygate.runtime.prune_request_log())
        return removed

    yield prune
    settings.request_log_retention_days, settings.request_log_max_rows = saved


def test_retention_prunes_by_age_and_by_row_cap(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream, pruned: Any
) -> None:
    keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    for _ in range(3):
        assert tenant.http.get("/klaviyo/api/profiles").status_code == 200
    wait_for(lambda: len(logs(tenant)["logs"]) == 3)
    # A cap of 2 rows (deployment-wide) keeps the newest two.
    pruned(7, 2)
    kept = logs(tenant)["logs"]
    assert len(kept) == 2, "the newest two are kept"
    # Rows past the retention age go (a retention of a millisecond: everything is older).
    time.sleep(0.01)
    pruned(0.01 / 86_400, 1_000_000)
    assert logs(tenant)["logs"] == []


def test_the_background_task_prunes_on_its_own(
    tmp_path: Path, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    harness = KeygateHarness(
        tmp_path,
        fresh_database(tmp_path, "kg_log_prune"),
        apps=upstream_overrides(upstream[1].url),
        request_log_prune_interval=0.2,
        request_log_max_rows=2,
    )
    try:
        tenant = harness.tenant()
        harness.import_connection(tenant, "klaviyo", {"access_token": "kl"})
        for _ in range(5):
            assert tenant.http.get("/klaviyo/api/profiles").status_code == 200
        time.sleep(0.5)
        wait_for(lambda: len(logs(tenant)["logs"]) == 2)
        tenant.close()
    finally:
        harness.stop()
