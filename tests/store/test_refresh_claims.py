"""The background refresh's claims: the database finds exactly the tokens the lifecycle calls
due, and a claimed row is nobody else's until it is released or its lease runs out."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import update

from keygate.crypto import generate_key
from keygate.oauth.lifecycle import refresh_margin
from keygate.runtime import Runtime
from keygate.settings import Settings
from keygate.store.refresh_claims import RefreshClaims
from keygate.store.schema import Credential, utcnow
from tests.support.databases import fresh_database

MARGIN = 300.0

# (name, lifetime in s or None for an unknown issue time, seconds until expiry)
CASES = [
    ("hour, just before its margin", 3600, 301),
    ("hour, just inside its margin", 3600, 299),
    ("minute, before half its life", 60, 31),
    ("minute, past half its life", 60, 29),
    ("two seconds, young", 2, 1.2),
    ("two seconds, past half", 2, 0.8),
    ("unknown issue, before the margin", None, 301),
    ("unknown issue, inside the margin", None, 299),
    ("expired", 3600, -5),
]


def test_due_in_the_database_is_due_for_the_lifecycle(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=fresh_database(tmp_path, "kg_refresh_claims"),
        encryption_key=SecretStr(generate_key()),
    )

    async def scenario() -> tuple[set[str], set[str], list[str], list[str], list[str]]:
        runtime = await Runtime.open(settings)
        try:
            now = utcnow()
            ws = await runtime.keys.ensure_workspace("default")
            names: dict[str, str] = {}
            expected: set[str] = set()
            for name, lifetime, left in CASES:
                conn = await runtime.connections.create(ws.id, "klaviyo", "OAUTH2", {})
                expires = now + timedelta(seconds=left)
                issued = None if lifetime is None else expires - timedelta(seconds=lifetime)
                values = {"access_token": "a", "refresh_token": "r"}
                await runtime.connections.activate(conn.id, values, expires, issued)
                if issued is None:
                    async with runtime.db.sessions() as session, session.begin():
                        await session.execute(
                            update(Credential)
                            .where(Credential.connection_id == conn.id)
                            .values(issued_at=None)
                        )
                names[conn.id] = name
                if expires.timestamp() - refresh_margin(MARGIN, issued, expires) <= now.timestamp():
                    expected.add(name)
            claims = RefreshClaims(runtime.db, runtime.connections)
            lease = now + timedelta(seconds=60)
            first = await claims.claim_expiring(now, MARGIN, lease, 100)
            again = await claims.claim_expiring(now, MARGIN, lease, 100)  # all held
            after_lease = lease + timedelta(seconds=1)
            await claims.release(first[:1])
            released = await claims.claim_expiring(now, MARGIN, lease, 100)
            lapsed = await claims.claim_expiring(after_lease, MARGIN, after_lease, 100)
            return (
                {names[c.connection.id] for c in first},
                expected,
                [names[c.connection.id] for c in again],
                [names[c.connection.id] for c in released],
                sorted(names[c.connection.id] for c in lapsed),
            )
        finally:
            await runtime.close()

    claimed, expected, again, released, lapsed = asyncio.run(scenario())
    assert expected == {
        "hour, just inside its margin",
        "minute, past half its life",
        "two seconds, past half",
        "unknown issue, inside the margin",
        "expired",
    }
    assert claimed == expected
    assert again == []
    assert len(released) == 1
    # A lease that ran out (its process died) is anyone's again; by then more tokens are due.
    assert set(lapsed) >= expected
