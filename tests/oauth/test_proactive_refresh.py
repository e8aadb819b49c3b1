"""Proactive refresh in one process: due tokens, idle refresh tokens and revoked grants, with no
gateway traffic, against the provider sandboxes over HTTP (the shared clock moves time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database
from tests.support.harness import Tenant
from tests.support.sandboxes import Sandbox, SandboxedKeygate

DAY = 86400.0
PASSES = 1.5
"""Seconds to wait when checking that nothing more happens: several passes of 0.2 s."""


@pytest.fixture
def proactive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SandboxedKeygate]:
    """A Keygate of its own with the scheduler on (a pass every 0.2 s), on a frozen clock."""
    made = SandboxedKeygate(
        tmp_path,
        fresh_database(tmp_path, f"kg_proactive_{request.node.name[5:40]}"),
        proactive_refresh=True,
        proactive_refresh_interval=0.2,
    )
    made.freeze_time()
    yield made
    made.stop()


@pytest.fixture
def caller(proactive: SandboxedKeygate) -> Iterator[Tenant]:
    """A workspace and key on that Keygate."""
    made = proactive.tenant()
    yield made
    made.close()


def refreshes(sandbox: Sandbox) -> int:
    """refresh_token grants the sandbox has answered."""
    return int(sandbox.admin("stats")["token_requests"].get("refresh_token", 0))


def wait_for(check: Callable[[], bool], what: str, within: float = 30) -> None:
    """Poll until `check()` holds; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def status(sandboxed: SandboxedKeygate, tenant: Tenant, connection: str) -> dict[str, object]:
    """The connection as GET /connections/{id} shows it."""
    response = tenant.http.get(f"/connections/{connection}")
    assert response.status_code == 200, response.text
    shown: dict[str, object] = response.json()["connection"]
    return shown


def token_version(sandboxed: SandboxedKeygate, connection: str) -> int:
    """The stored credential's version: it moves when Keygate has stored new tokens."""
    harness = sandboxed.keygate
    credential = harness.run(harness.runtime.connections.credentials(connection))
    assert credential is not None
    return int(credential.version)


def test_a_due_token_with_no_traffic_is_refreshed_once(
    proactive: SandboxedKeygate, caller: Tenant
) -> None:
    tenant = caller
    due = proactive.oauth_connection(tenant, "klaviyo")  # the sandbox's 3600 s lifetime
    proactive.oauth_connection(tenant, "klaviyo", expires_in=7200)
    proactive.advance(3600 - 200)  # inside the first one's 300 s margin, far from the second's
    wait_for(lambda: refreshes(proactive.klaviyo) >= 1, "the background refresh")
    time.sleep(PASSES)
    assert refreshes(proactive.klaviyo) == 1  # once, and not the token that is not due
    # The next request finds the fresh token: no refresh of its own.
    response = tenant.http.get(
        "/klaviyo/api/accounts", headers={"Maton-Connection": due, "revision": "2026-01-15"}
    )
    assert response.status_code == 200, response.text
    assert refreshes(proactive.klaviyo) == 1


def test_an_unused_refresh_token_is_used_before_the_provider_expires_it(
    proactive: SandboxedKeygate, caller: Tenant
) -> None:
    """Constant Contact kills refresh tokens unused for 180 days; the catalog says so, and
    Keygate refreshes after 162 (nine tenths), with no request ever made."""
    tenant = caller
    conn = proactive.oauth_connection(tenant, "constant-contact", expires_in=0)  # no expiry known
    first = token_version(proactive, conn)
    proactive.advance(150 * DAY)
    time.sleep(PASSES)
    assert refreshes(proactive.cc) == 0  # not yet
    proactive.advance(13 * DAY)
    wait_for(lambda: refreshes(proactive.cc) == 1, "the idle refresh token's touch")
    # The clock moves on only once the new tokens are stored, so they are dated at the touch
    # (the premise below), not after the move.
    wait_for(lambda: token_version(proactive, conn) > first, "the touched tokens stored")
    # 326 days after the first token set was issued: the refresh token in use is 163 days old,
    # so the provider still takes it.
    proactive.advance(163 * DAY)
    wait_for(lambda: refreshes(proactive.cc) == 2, "the second touch")
    time.sleep(PASSES)
    assert refreshes(proactive.cc) == 2
    assert status(proactive, tenant, conn)["status"] == "ACTIVE"
    response = tenant.http.get(
        "/constant-contact/v3/account/summary", headers={"Maton-Connection": conn}
    )
    assert response.status_code == 200, response.text


def test_a_refused_refresh_token_marks_the_connection_failed(
    proactive: SandboxedKeygate, caller: Tenant
) -> None:
    tenant = caller
    conn = proactive.oauth_connection(tenant, "klaviyo")
    proactive.klaviyo.admin("revoke_all", {})
    proactive.advance(3600 - 100)
    wait_for(
        lambda: status(proactive, tenant, conn)["status"] == "FAILED", "the connection to fail"
    )
    shown = status(proactive, tenant, conn)
    error = shown["error"]
    assert isinstance(error, dict)
    assert error["code"] == "reauthorization_required"
    time.sleep(PASSES)
    assert refreshes(proactive.klaviyo) == 1  # a FAILED connection is not tried again
