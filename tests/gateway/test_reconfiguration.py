"""The gateway serves the configuration the runtime holds now, not the one it started with."""

from __future__ import annotations

from pathlib import Path

from tests.support.harness import KeygateHarness
from tests.support.servers import ServerThread
from tests.support.upstream import RecordingUpstream

CATALOG = Path(__file__).parents[1] / "support" / "catalog"


def test_a_reconfigured_base_url_is_used_by_the_next_request(
    tmp_path: Path, upstream: tuple[RecordingUpstream, ServerThread], recording: RecordingUpstream
) -> None:
    # A Keygate of its own, with no KEYGATE_APPS__* override (which would win over the stored
    # setting), on SQLite whatever the run's database: it must not wipe the shared one.
    keygate = KeygateHarness(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'keygate.db'}", catalog_dir=CATALOG
    )
    tenant = None
    try:
        # Both base URLs lead to the recording upstream, which sees the path prefix.
        keygate.configure("header-key", base_url=f"{upstream[1].url}/first")
        tenant = keygate.tenant()
        conn = keygate.import_connection(tenant, "header-key", {"api_key": "k"}, method="API_KEY")
        chosen = {"Keygate-Connection": conn.id}
        assert tenant.http.get("/header-key/items", headers=chosen).status_code == 200
        assert recording.seen[-1].raw_path == b"/first/items"
        # Stored as `keygate apps configure` does, then reloaded (as the poll reloads when
        # another process writes).
        keygate.configure("header-key", base_url=f"{upstream[1].url}/second")
        assert tenant.http.get("/header-key/items", headers=chosen).status_code == 200
        assert recording.seen[-1].raw_path == b"/second/items"
    finally:
        if tenant is not None:
            tenant.close()
        keygate.stop()
