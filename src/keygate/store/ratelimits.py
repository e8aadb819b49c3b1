"""The fleet-wide rate limit's shared buckets: one row per API key, leased from in batches.

Only PostgreSQL uses them (see `keygate.gateway.ratelimit` for why and how); a lease is one
statement, atomic under the row's lock, timed by the database's clock so that replicas' clocks
need not agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, String, bindparam, text

from keygate.store.database import Database

# The bucket refills at :rate a second up to :burst since its stamp; the lease takes up to
# :want whole tokens of what it holds. A new key's bucket starts full. `now()` is the start of
# this one-statement transaction; a lease that waited for the row lock behind a later one must
# neither refill backwards nor move the stamp back, hence the GREATESTs.
_AVAILABLE = "LEAST(:burst, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM now()) - b.stamp) * :rate)"
_LEASE = text(
    f"""
    INSERT INTO rate_buckets AS b (key_id, tokens, stamp, granted, leases)
    VALUES (:key, :burst - LEAST(:want, FLOOR(:burst)), EXTRACT(EPOCH FROM now()),
            LEAST(:want, FLOOR(:burst)), 1)
    ON CONFLICT (key_id) DO UPDATE SET
        leases = b.leases + 1,
        granted = LEAST(:want, FLOOR({_AVAILABLE})),
        tokens = {_AVAILABLE} - LEAST(:want, FLOOR({_AVAILABLE})),
        stamp = GREATEST(b.stamp, EXTRACT(EPOCH FROM now()))
    RETURNING b.granted, b.tokens
    """  # noqa: S608 - a constant expression, no input in it
).bindparams(
    bindparam("key", type_=String()),
    bindparam("want", type_=Float()),
    bindparam("rate", type_=Float()),
    bindparam("burst", type_=Float()),
)
_PURGE = text("DELETE FROM rate_buckets WHERE stamp < EXTRACT(EPOCH FROM now()) - :idle")


@dataclass(frozen=True, slots=True)
class Lease:
    """What a lease took from a key's bucket, and what the bucket still holds."""

    granted: int
    left: float


class RateBuckets:
    """Leases from the shared per-key buckets (no epoch bump: nothing cached depends on them)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def lease(self, key_id: str, want: int, rate: float, burst: float) -> Lease:
        """Take up to `want` tokens from the key's bucket (fewer, or none, if it holds less)."""
        params = {"key": key_id, "want": want, "rate": rate, "burst": burst}
        async with self._db.sessions() as session, session.begin():
            row = (await session.execute(_LEASE, params)).one()
        return Lease(int(row[0]), float(row[1]))

    async def purge_idle(self, idle_seconds: float) -> None:
        """Drop buckets untouched that long (they would be full again: the same as none)."""
        async with self._db.sessions() as session, session.begin():
            await session.execute(_PURGE, {"idle": idle_seconds})
