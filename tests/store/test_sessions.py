"""Connect sessions: single use decided by the database, expired ones purged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from keygate.store.schema import utcnow
from keygate.store.sessions import SessionRepository, SignOutRepository
from tests.support.harness import KeygateHarness, Tenant


def test_spend_is_single_use_and_purge_forgets_expired(
    keygate: KeygateHarness, tenant: Tenant
) -> None:
    conn = tenant.http.post("/connections", json={"app": "klaviyo"}).json()["connection"]
    sessions = SessionRepository(keygate.runtime.db)

    async def scenario() -> tuple[bool, bool, bool, int, bool, bool]:
        past, future = utcnow() - timedelta(seconds=5), utcnow() + timedelta(hours=1)
        first = await sessions.spend("aa" * 8, conn["connection_id"], past)
        again = await sessions.spend("aa" * 8, conn["connection_id"], past)
        live = await sessions.spend("bb" * 8, conn["connection_id"], future)
        purged = await sessions.purge_expired()
        return (
            first,
            again,
            live,
            purged,
            await sessions.is_spent("aa" * 8),
            await sessions.is_spent("bb" * 8),
        )

    first, again, live, purged, old_kept, live_kept = keygate.run(scenario())
    assert (first, again, live) == (True, False, True)
    assert purged >= 1
    assert old_kept is False
    assert live_kept is True


def test_claim_completes_a_pending_authorization_once(
    keygate: KeygateHarness, tenant: Tenant
) -> None:
    conn = tenant.http.post("/connections", json={"app": "klaviyo"}).json()["connection"]
    sessions = SessionRepository(keygate.runtime.db)

    async def scenario() -> tuple[object, object, object, object]:
        past, future = utcnow() - timedelta(seconds=5), utcnow() + timedelta(hours=1)
        await sessions.spend("cc" * 8, conn["connection_id"], future, state_hash="live")
        await sessions.spend("dd" * 8, conn["connection_id"], past, state_hash="stale")
        first = await sessions.claim("live")
        return (
            first,
            await sessions.claim("live"),
            await sessions.claim("stale"),
            (await sessions.claim("unknown")),
        )

    first, replayed, expired, unknown = keygate.run(scenario())
    assert first is not None
    assert first.connection_id == conn["connection_id"]
    assert first.completed_at is not None
    assert (replayed, expired, unknown) == (None, None, None)


def test_signing_out_at_once_twice_or_more_is_fine(keygate: KeygateHarness) -> None:
    """Two tabs signing one session out at the same moment: every call returns, none a 500
    (it checked, then inserted, so the second insert could hit the primary key)."""
    sign_outs = SignOutRepository(keygate.runtime.db)

    async def scenario() -> tuple[bool, bool, int]:
        future = utcnow() + timedelta(hours=1)
        await asyncio.gather(*(sign_outs.sign_out("ee" * 8, future) for _ in range(8)))
        await sign_outs.sign_out("ee" * 8, future)
        return (
            await sign_outs.signed_out("ee" * 8),
            await sign_outs.signed_out("ff" * 8),
            await sign_outs.purge_expired(),
        )

    assert keygate.run(scenario()) == (True, False, 0)
