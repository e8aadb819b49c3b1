"""Spent connect links, the pending OAuth authorizations started from them, and signed-out
dashboard sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from keygate.store.database import Database
from keygate.store.schema import ConnectSession, UiSignOut, utcnow


class SessionRepository:
    """Single-use bookkeeping for connect-link session tokens."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def is_spent(self, nonce: str) -> bool:
        """Whether a token with this nonce has already been used."""
        async with self._db.read() as session:
            row = await session.get(ConnectSession, nonce)
        return row is not None

    async def spend(
        self,
        nonce: str,
        connection_id: str,
        expires_at: datetime,
        state_hash: str | None = None,
        verifier_ciphertext: str | None = None,
    ) -> bool:
        """Record the token as used; False if it already was (the unique key decides races)."""
        row = ConnectSession(
            nonce=nonce,
            connection_id=connection_id,
            state_hash=state_hash,
            verifier_ciphertext=verifier_ciphertext,
            created_at=utcnow(),
            expires_at=expires_at,
            completed_at=None,
        )
        try:
            async with self._db.sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            return False
        return True

    async def by_state(self, state_hash: str) -> ConnectSession | None:
        """The pending authorization with this state."""
        async with self._db.read() as session:
            return await session.scalar(
                select(ConnectSession).where(ConnectSession.state_hash == state_hash)
            )

    async def claim(self, state_hash: str) -> ConnectSession | None:
        """Mark the pending authorization with this state completed and return it; None if it
        is unknown, already completed or expired (one UPDATE decides races)."""
        now = utcnow()
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(
                update(ConnectSession)
                .where(
                    ConnectSession.state_hash == state_hash,
                    ConnectSession.completed_at.is_(None),
                    ConnectSession.expires_at > now,
                )
                .values(completed_at=now)
            )
            claimed = getattr(result, "rowcount", 0) == 1
        return await self.by_state(state_hash) if claimed else None

    async def purge_expired(self) -> int:
        """Forget sessions past their expiry (their tokens are refused by age anyway)."""
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(
                delete(ConnectSession).where(ConnectSession.expires_at < utcnow())
            )
        return int(getattr(result, "rowcount", 0) or 0)


class SignOutRepository:
    """Dashboard sessions ended by signing out, remembered until their cookie would expire."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def sign_out(self, nonce: str, expires_at: datetime) -> None:
        """Refuse the session with this nonce from now on (signing out twice is fine, at once
        too: the primary key decides, as in `SessionRepository.spend`)."""
        try:
            async with self._db.sessions() as session, session.begin():
                session.add(UiSignOut(nonce=nonce, expires_at=expires_at))
        except IntegrityError:
            pass  # signed out already

    async def signed_out(self, nonce: str) -> bool:
        """Whether the session with this nonce was signed out."""
        async with self._db.read() as session:
            return await session.get(UiSignOut, nonce) is not None

    async def purge_expired(self) -> int:
        """Forget sign-outs whose sessions have expired anyway."""
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(delete(UiSignOut).where(UiSignOut.expires_at < utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)
