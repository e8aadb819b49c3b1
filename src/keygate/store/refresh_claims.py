"""Which OAuth credentials are due for a background refresh, each claimed by one process.

A claim is one statement: `UPDATE credentials SET refresh_claimed_until = … WHERE connection_id
IN (SELECT … due … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING connection_id`. On PostgreSQL the
sub-select skips rows another transaction holds — another replica's claim, or an on-demand
refresh holding the row's lock while the provider answers — and re-checks the claim column of
rows committed meanwhile, so two replicas never claim one row. SQLite runs the statement under
its single write lock, so it is atomic there too. Claims do not bump the cache epoch: nothing a
reader caches changes until a refresh stores new tokens.

Times are the caller's clock (bound parameters), never the database's: tests move the clock,
and every process of a fleet must agree on "due" with its own gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Select, and_, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from keygate.store.connections import ConnectionRepository, connection_record
from keygate.store.database import Database
from keygate.store.records import ConnectionRecord, CredentialRecord, Status
from keygate.store.schema import Connection, Credential

OAUTH2 = "OAUTH2"


class epoch_seconds(FunctionElement[float]):  # named as SQL functions are
    """A UTC timestamp column as epoch seconds, on PostgreSQL and SQLite alike."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds, "postgresql")
def _epoch_postgres(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # A `timestamp without time zone` holding UTC: its nominal seconds since 1970 are UTC's.
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday() parses the stored ISO text; 2440587.5 is the Julian day of 1970-01-01 00:00.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def access_token_due(now: datetime, margin_seconds: float) -> ColumnElement[bool]:
    """Rows whose access token is due by the lifecycle's rule (`oauth.lifecycle.refresh_margin`):
    the margin before expiry, but at most half the token's lifetime.

    due iff  expires - min(m, max(0, (expires - issued) / 2)) <= now
        iff  expires <= now + m,  and  issued unknown, or expires <= now,
             or expires + issued <= 2 * now

    The first conjunct is a range on the expiry index; the rest filters what it finds.
    """
    now_s = now.timestamp()
    return and_(
        Credential.expires_at <= datetime.fromtimestamp(now_s + margin_seconds, now.tzinfo),
        or_(
            Credential.issued_at.is_(None),
            Credential.expires_at <= now,
            epoch_seconds(Credential.expires_at) + epoch_seconds(Credential.issued_at) <= 2 * now_s,
        ),
    )


def refresh_token_idle(app: str, cutoff: datetime) -> tuple[ColumnElement[bool], ...]:
    """Rows of `app` whose token set was obtained at or before `cutoff` — or, for rows stored
    before Keygate recorded that, written then.

    Two conditions, claimed one after the other: each is one range of the (issued_at,
    updated_at) index, where their OR (or an OR over apps) made SQLite scan every connection.
    """
    return (
        and_(Connection.app == app, Credential.issued_at <= cutoff),
        and_(
            Connection.app == app,
            Credential.issued_at.is_(None),
            Credential.updated_at <= cutoff,
        ),
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A connection this process holds the refresh claim of, with its credential as read."""

    connection: ConnectionRecord
    credential: CredentialRecord
    claimed_until: datetime


class RefreshClaims:
    """Claims, rests and releases of credential rows for the background refresh."""

    def __init__(self, db: Database, connections: ConnectionRepository) -> None:
        self._db = db
        self._connections = connections

    async def claim_expiring(
        self, now: datetime, margin_seconds: float, until: datetime, limit: int
    ) -> list[Claimed]:
        """Claim, until `until`, up to `limit` rows whose access token is due, soonest first."""
        return await self._claim(
            access_token_due(now, margin_seconds), Credential.expires_at, now, until, limit
        )

    async def claim_idle(
        self, now: datetime, cutoffs: Mapping[str, datetime], until: datetime, limit: int
    ) -> list[Claimed]:
        """Claim up to `limit` rows of the apps in `cutoffs` whose refresh token has gone unused
        since the app's cutoff, oldest first."""
        claimed: list[Claimed] = []
        for app, cutoff in cutoffs.items():
            for idle in refresh_token_idle(app, cutoff):
                if len(claimed) == limit:
                    return claimed
                claimed += await self._claim(
                    idle, Credential.issued_at, now, until, limit - len(claimed)
                )
        return claimed

    async def _claim(
        self,
        due: ColumnElement[bool],
        order: Any,
        now: datetime,
        until: datetime,
        limit: int,
    ) -> list[Claimed]:
        unclaimed = or_(
            Credential.refresh_claimed_until.is_(None), Credential.refresh_claimed_until <= now
        )
        candidates: Select[str] = (
            select(Credential.connection_id)
            .join(Connection, Connection.id == Credential.connection_id)
            .where(
                due,
                unclaimed,
                Connection.status == Status.ACTIVE.value,
                Connection.method == OAUTH2,
                # A failed refresh's backoff belongs to the lifecycle: wait for it.
                or_(Credential.retry_after.is_(None), Credential.retry_after <= now),
            )
            .order_by(order)
            .limit(limit)
            .with_for_update(of=Credential, skip_locked=True)  # SQLite renders no FOR UPDATE
        )
        claim = (
            update(Credential)
            .where(Credential.connection_id.in_(candidates), unclaimed)
            .values(refresh_claimed_until=until)
            .returning(Credential.connection_id)
        )
        async with self._db.sessions() as session, session.begin():
            ids = list(
                await session.scalars(claim, execution_options={"synchronize_session": False})
            )
            if not ids:
                return []
            rows = await session.execute(
                select(Connection, Credential)
                .join(Credential, Credential.connection_id == Connection.id)
                .where(Connection.id.in_(ids))
            )
            return [
                Claimed(connection_record(conn), self._connections.decrypt(cred), until)
                for conn, cred in rows
            ]

    async def release(self, claims: Iterable[Claimed]) -> None:
        """Give up claims still held (a refresh that stored tokens has already cleared its own)."""
        await self._set_claim(claims, None)

    async def rest(self, claims: Iterable[Claimed], until: datetime) -> None:
        """Leave rows with nothing to refresh (no refresh token, no OAuth app) alone until
        `until`, or until new tokens are stored for them."""
        await self._set_claim(claims, until)

    async def _set_claim(self, claims: Iterable[Claimed], value: datetime | None) -> None:
        by_until: dict[datetime, list[str]] = {}
        for held in claims:
            by_until.setdefault(held.claimed_until, []).append(held.connection.id)
        if not by_until:
            return
        async with self._db.sessions() as session, session.begin():
            for until, ids in by_until.items():
                # Only where the claim is still ours: it may have lapsed and been taken again.
                await session.execute(
                    update(Credential)
                    .where(
                        Credential.connection_id.in_(ids),
                        Credential.refresh_claimed_until == until,
                    )
                    .values(refresh_claimed_until=value),
                    execution_options={"synchronize_session": False},
                )
