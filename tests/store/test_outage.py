"""A PostgreSQL outage: the gateway keeps serving what it served, the rest answers 503, once logged.

The test runs a PostgreSQL server of its own (whatever store the rest of the suite uses) and stops
it under a Keygate served over real HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from keygate.catalog.loader import AppOverrides
from tests.support.harness import KeygateHarness
from tests.support.postgres import ThrowawayPostgres, postgres_bin
from tests.support.servers import ServerThread, free_port
from tests.support.upstream import RecordingUpstream

CATALOG = Path(__file__).parent.parent / "support" / "catalog"
OUTAGE_SECONDS = 2.0


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server the test may stop and start."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (make test installs them)")
    server = ThrowawayPostgres(bin_dir)
    yield server
    server.destroy()


class _Records(logging.Handler):
    """Every log record emitted while attached, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def keygate(self) -> list[logging.LogRecord]:
        """Keygate's own records."""
        return [r for r in self.records if r.name.split(".")[0] == "keygate"]


def _assert_store_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["keygate-error"] == "store_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["error"]["code"] == "store_unavailable"


@pytest.mark.timeout(240)
def test_a_database_outage_keeps_known_routes_serving_and_logs_once(
    postgres: ThrowawayPostgres,
    tmp_path: Path,
    upstream: tuple[RecordingUpstream, ServerThread],
    capfd: pytest.CaptureFixture[str],
) -> None:
    recording = upstream[0]
    apps = {
        "klaviyo": AppOverrides(base_url=upstream[1].url),
        # A token endpoint that refuses connections: a due refresh fails, the token is still good.
        "constant-contact": AppOverrides(
            base_url=upstream[1].url,
            token_url=f"http://127.0.0.1:{free_port()}/token",
            client_id="client",
            client_secret="client-secret",
        ),
    }
    keygate = KeygateHarness(tmp_path, postgres.url, apps=apps, catalog_dir=CATALOG)
    records = _Records()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    keygate_logger = logging.getLogger("keygate")
    level = keygate_logger.level
    known = keygate.tenant()
    unseen = keygate.tenant()
    deleting = keygate.tenant()
    try:
        keygate.import_connection(known, "klaviyo", {"access_token": "known-token"})
        keygate.import_connection(unseen, "klaviyo", {"access_token": "unseen-token"})
        # Expires in 2 minutes, inside the 5-minute refresh margin: every request tries a refresh.
        keygate.import_connection(
            known,
            "constant-contact",
            {"access_token": "cc-token", "refresh_token": "r"},
            expires_in=120,
        )
        doomed = keygate.import_connection(deleting, "klaviyo", {"access_token": "deleted-token"})
        assert known.http.get("/klaviyo/api/profiles").status_code == 200
        assert known.http.get("/constant-contact/v3/contacts").status_code == 200
        assert deleting.http.get("/klaviyo/api/profiles").status_code == 200
        # Control-plane writes just before the outage: each clears every cache of this process.
        assert deleting.http.delete(f"/connections/{doomed.id}").status_code == 200
        created = known.http.post("/connections", json={"app": "klaviyo"})
        assert created.status_code == 201
        with httpx.Client(base_url=keygate.url, timeout=30) as anonymous:
            assert anonymous.get("/readyz").status_code == 200
            # The counters are the process's (other tests in it count too): compare to now.
            before = anonymous.get("/metrics").text
            outages = _metric(before, "keygate_store_outages_total")
            refused = _metric(before, "keygate_store_unavailable_total")

            keygate_logger.setLevel(logging.INFO)
            for logger in loggers:
                logger.addHandler(records)
            capfd.readouterr()
            postgres.stop()

            recording.clear()
            served = 0
            deadline = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < deadline or served < 5:
                for path in ("/klaviyo/api/profiles", "/constant-contact/v3/contacts"):
                    response = known.http.get(path)
                    assert response.status_code == 200, response.text
                    served += 1
            assert len(recording.seen) == served
            assert {seen.header("authorization") for seen in recording.seen} == {
                "Bearer known-token",
                "Bearer cc-token",
            }
            # Concurrent requests on a token due for refresh share one refresh attempt; it cannot
            # reach the store, and none of them waits on it for good.
            assert (
                _concurrently(keygate.url, known.key, "/constant-contact/v3/contacts") == [200] * 16
            )
            # What the cache never held cannot be answered, nor what this process deleted.
            _assert_store_unavailable(unseen.http.get("/klaviyo/api/profiles"))
            _assert_store_unavailable(deleting.http.get("/klaviyo/api/profiles"))
            # Connection calls of the control plane need the store.
            _assert_store_unavailable(known.http.get("/connections"))
            _assert_store_unavailable(known.http.post("/connections", json={"app": "klaviyo"}))
            ready = anonymous.get("/readyz")
            assert ready.status_code == 503
            assert int(ready.headers["retry-after"]) > 0
            metrics = anonymous.get("/metrics").text
            assert _metric(metrics, "keygate_store_up") == 0
            assert _metric(metrics, "keygate_store_outages_total") == outages + 1
            assert _metric(metrics, "keygate_store_unavailable_total") >= refused + 4
            during = [(r.levelname, r.getMessage()) for r in records.keygate()]
            assert [levelname for levelname, _ in during] == ["WARNING"], during
            assert "unreachable" in during[0][1]

            postgres.start()
            # No restart of Keygate: the next calls find the database again (within tens of
            # milliseconds when idle; the bound is generous for a loaded machine).
            deadline = time.monotonic() + 10
            while (listing := known.http.get("/connections")).status_code != 200:
                assert time.monotonic() < deadline, listing.text
                time.sleep(0.05)
            assert unseen.http.get("/klaviyo/api/profiles").status_code == 200
            assert recording.seen[-1].header("authorization") == "Bearer unseen-token"
            assert known.http.get("/klaviyo/api/profiles").status_code == 200
            assert deleting.http.get("/klaviyo/api/profiles").status_code == 400  # none left
            assert anonymous.get("/readyz").status_code == 200
            metrics = anonymous.get("/metrics").text
            assert _metric(metrics, "keygate_store_up") == 1
            assert _metric(metrics, "keygate_store_outages_total") == outages + 1
    finally:
        for logger in loggers:
            logger.removeHandler(records)
        keygate_logger.setLevel(level)
        for tenant in (known, unseen, deleting):
            tenant.close()
        keygate.stop()
    logged = [(r.levelname, r.getMessage()) for r in records.keygate()]
    assert [levelname for levelname, _ in logged] == ["WARNING", "INFO"], logged
    assert "reachable again" in logged[1][1]
    assert not [r for r in records.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in capfd.readouterr().err


def _concurrently(url: str, key: str, path: str, count: int = 16) -> list[int]:
    def one(_: int) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            return client.get(path).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")
