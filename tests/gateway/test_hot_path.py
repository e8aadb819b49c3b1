"""The invariants the proxy's speed depends on."""

from __future__ import annotations

from tests.support.harness import KeygateHarness, Tenant, is_log_batch
from tests.support.upstream import RecordingUpstream


def test_steady_state_request_makes_no_database_query(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "kl"})
    with keygate.counting_statements() as counter:
        # Warm the caches: key, default connection, chosen connection, credential.
        assert tenant.http.get("/klaviyo/api/profiles").status_code == 200
        warm = tenant.http.get("/klaviyo/api/profiles", headers={"Maton-Connection": conn.id})
        assert warm.status_code == 200
        counter.statements.clear()
        for _ in range(25):
            assert tenant.http.get("/klaviyo/api/profiles").status_code == 200
            response = tenant.http.get("/klaviyo/api/x", headers={"Maton-Connection": conn.id})
            assert response.status_code == 200
        # The only statements are the request log's batched inserts (a batch per 0.5 s at
        # most, never one per request; on SQLite they bypass the engine and are not counted)
        # and the webhook worker's outbox poll, which runs on its own clock whatever the traffic.
        assert counter.of_requests() == []
        assert len([s for s in counter.statements if is_log_batch(s)]) <= 10
        # The counter does see queries: a control-plane read makes at least one.
        counter.statements.clear()
        tenant.http.get(f"/connections/{conn.id}")
        assert counter.statements


def test_a_write_invalidates_the_cache(
    keygate: KeygateHarness, tenant: Tenant, recording: RecordingUpstream
) -> None:
    conn = keygate.import_connection(tenant, "klaviyo", {"access_token": "before"})
    tenant.http.get("/klaviyo/api/profiles")
    assert recording.seen[-1].header("authorization") == "Bearer before"
    keygate.run(keygate.runtime.connections.activate(conn.id, {"access_token": "after"}, None))
    tenant.http.get("/klaviyo/api/profiles")
    assert recording.seen[-1].header("authorization") == "Bearer after"
    assert tenant.http.delete(f"/connections/{conn.id}").status_code == 200
    assert tenant.http.get("/klaviyo/api/profiles").status_code == 400
