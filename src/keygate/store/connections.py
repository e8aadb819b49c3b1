"""Connections and their encrypted credentials, and the lock a token refresh holds on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keygate.crypto import Cipher
from keygate.secret import Secret
from keygate.store.database import Database
from keygate.store.engine import host_lock
from keygate.store.events import KEYGATE, EventType, record_event
from keygate.store.records import ConnectionRecord, CredentialRecord, Status
from keygate.store.schema import Connection, Credential, utcnow


def connection_record(row: Connection) -> ConnectionRecord:
    """The plain record of a connection row."""
    return ConnectionRecord(
        seq=row.seq,
        id=row.id,
        workspace_id=row.workspace_id,
        app=row.app,
        method=row.method,
        status=Status(row.status),
        metadata=dict(row.metadata_ or {}),
        scopes=row.scopes,
        params=dict(row.params or {}),
        error_code=row.error_code,
        error_message=row.error_message,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True, slots=True)
class ConnectionFilter:
    """Optional, combinable filters of a connection listing."""

    app: str | None = None
    status: Status | None = None
    method: str | None = None


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What a listing shows of a connection's credential: never a secret."""

    expires_at: datetime | None
    refresh_failures: int


class ConnectionRepository:
    """Reads and writes connections; credentials are encrypted bound to the connection id."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        workspace_id: str,
        app: str,
        method: str,
        metadata: dict[str, Any],
        scopes: list[str] | None = None,
        params: dict[str, str] | None = None,
        *,
        actor: str = KEYGATE,
    ) -> ConnectionRecord:
        """A new PENDING connection (`params`: its connection parameters, checked), and its
        `connection.created` event, by `actor`."""
        now = utcnow()
        row = Connection(
            id=str(uuid.uuid4()),
            workspace_id=workspace_id,
            app=app,
            method=method,
            status=Status.PENDING.value,
            metadata_=metadata,
            scopes=scopes,
            params=params or None,
            error_code=None,
            error_message=None,
            created_at=now,
            updated_at=now,
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
            await record_event(
                session,
                workspace_id=workspace_id,
                type=EventType.CONNECTION_CREATED,
                actor=actor,
                connection_id=row.id,
                data={"app": app, "method": method},
            )
        return connection_record(row)

    async def get(
        self, connection_id: str, workspace_id: str | None = None
    ) -> ConnectionRecord | None:
        """The connection, if it exists (and, when given, belongs to that workspace)."""
        query = select(Connection).where(Connection.id == connection_id)
        if workspace_id is not None:
            query = query.where(Connection.workspace_id == workspace_id)
        async with self._db.read() as session:
            row = await session.scalar(query)
        return None if row is None else connection_record(row)

    async def list(
        self, workspace_id: str | None, filters: ConnectionFilter, limit: int, after_seq: int = 0
    ) -> tuple[list[ConnectionRecord], bool]:
        """Oldest first, after a cursor; also whether more rows follow."""
        query = select(Connection).where(Connection.seq > after_seq)
        if workspace_id is not None:
            query = query.where(Connection.workspace_id == workspace_id)
        if filters.app is not None:
            query = query.where(Connection.app == filters.app)
        if filters.status is not None:
            query = query.where(Connection.status == filters.status.value)
        if filters.method is not None:
            query = query.where(Connection.method == filters.method)
        query = query.order_by(Connection.seq).limit(limit + 1)
        async with self._db.read() as session:
            rows = [connection_record(r) for r in await session.scalars(query)]
        return rows[:limit], len(rows) > limit

    async def oldest_active(self, workspace_id: str, app: str) -> ConnectionRecord | None:
        """The default connection of an app in a workspace: its oldest ACTIVE one."""
        query = (
            select(Connection)
            .where(
                Connection.workspace_id == workspace_id,
                Connection.app == app,
                Connection.status == Status.ACTIVE.value,
            )
            .order_by(Connection.seq)
            .limit(1)
        )
        async with self._db.read() as session:
            row = await session.scalar(query)
        return None if row is None else connection_record(row)

    async def delete(self, connection_id: str, *, actor: str = KEYGATE) -> None:
        """Remove the connection and, by cascade, its credentials and sessions (and record
        `connection.deleted`, by `actor`)."""
        async with self._db.write() as session:
            row = await session.scalar(select(Connection).where(Connection.id == connection_id))
            if row is not None:
                await record_event(
                    session,
                    workspace_id=row.workspace_id,
                    type=EventType.CONNECTION_DELETED,
                    actor=actor,
                    connection_id=connection_id,
                    data={"app": row.app},
                )
            await session.execute(
                delete(Credential).where(Credential.connection_id == connection_id)
            )
            await session.execute(delete(Connection).where(Connection.id == connection_id))

    async def set_params(
        self, connection_id: str, params: dict[str, str]
    ) -> ConnectionRecord | None:
        """Add connection parameters (given on the connect page) to a connection."""
        async with self._db.write() as session:
            row = await session.scalar(select(Connection).where(Connection.id == connection_id))
            if row is None:
                return None
            row.params = {**(row.params or {}), **params}
            row.updated_at = utcnow()
            return connection_record(row)

    async def set_status(
        self,
        connection_id: str,
        status: Status,
        error_code: str | None = None,
        error_message: str | None = None,
        *,
        actor: str = KEYGATE,
    ) -> ConnectionRecord | None:
        """Change the status (and error) of a connection; a change to FAILED records
        `connection.failed` (with the error code, never a provider's message)."""
        async with self._db.write() as session:
            row = await session.scalar(select(Connection).where(Connection.id == connection_id))
            if row is None:
                return None
            row.status = status.value
            row.error_code, row.error_message = error_code, error_message
            row.updated_at = utcnow()
            if status is Status.FAILED:
                await record_event(
                    session,
                    workspace_id=row.workspace_id,
                    type=EventType.CONNECTION_FAILED,
                    actor=actor,
                    connection_id=connection_id,
                    data={"app": row.app, "error_code": error_code},
                )
            return connection_record(row)

    async def activate(
        self,
        connection_id: str,
        values: dict[str, str],
        expires_at: datetime | None,
        issued_at: datetime | None = None,
        *,
        actor: str = KEYGATE,
    ) -> ConnectionRecord | None:
        """Store fresh credentials and make the connection ACTIVE, in one transaction.

        `issued_at` is when the token set was obtained (default: now). The event is
        `connection.activated` for a connection's first credentials, `connection.reauthorized`
        when they replace earlier ones.
        """
        async with self._db.write() as session:
            row = await session.scalar(select(Connection).where(Connection.id == connection_id))
            if row is None:
                return None
            had_credentials = await session.get(Credential, connection_id) is not None
            await record_event(
                session,
                workspace_id=row.workspace_id,
                type=(
                    EventType.CONNECTION_REAUTHORIZED
                    if had_credentials
                    else EventType.CONNECTION_ACTIVATED
                ),
                actor=actor,
                connection_id=connection_id,
                data={"app": row.app},
            )
            await self._put_credentials(
                session, connection_id, values, expires_at, issued_at or utcnow()
            )
            row.status = Status.ACTIVE.value
            row.error_code = row.error_message = None
            row.updated_at = utcnow()
            return connection_record(row)

    async def _put_credentials(
        self,
        session: Any,
        connection_id: str,
        values: dict[str, str],
        expires_at: datetime | None,
        issued_at: datetime,
    ) -> None:
        ciphertext = self._db.cipher.encrypt(orjson.dumps(values), bound_to=connection_id)
        existing = await session.get(Credential, connection_id)
        now = utcnow()
        if existing is None:
            session.add(
                Credential(
                    connection_id=connection_id,
                    ciphertext=ciphertext,
                    key_id=self._db.cipher.primary_key_id,
                    expires_at=expires_at,
                    issued_at=issued_at,
                    version=1,
                    refresh_failures=0,
                    retry_after=None,
                    updated_at=now,
                    refresh_claimed_until=None,
                )
            )
        else:
            existing.ciphertext = ciphertext
            existing.key_id = self._db.cipher.primary_key_id
            existing.expires_at = expires_at
            existing.issued_at = issued_at
            existing.version += 1
            existing.refresh_failures = 0
            existing.retry_after = None
            existing.updated_at = now
            existing.refresh_claimed_until = None  # new tokens: due by their own times

    async def credentials(self, connection_id: str) -> CredentialRecord | None:
        """The decrypted credentials of a connection."""
        async with self._db.read() as session:
            row = await session.get(Credential, connection_id)
        return None if row is None else self.decrypt(row)

    async def token_facts(self, connection_ids: Sequence[str]) -> dict[str, TokenFacts]:
        """When each connection's token expires and how many refreshes failed in a row, read
        in one query without decrypting anything (for listings)."""
        if not connection_ids:
            return {}
        query = select(
            Credential.connection_id, Credential.expires_at, Credential.refresh_failures
        ).where(Credential.connection_id.in_(connection_ids))
        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
        return {row[0]: TokenFacts(row[1], row[2]) for row in rows}

    @property
    def cipher(self) -> Cipher:
        """The cipher credentials are encrypted with."""
        return self._db.cipher

    def decrypt(self, row: Credential) -> CredentialRecord:
        """Turn a stored credential row into a record of Secret values."""
        plain = orjson.loads(self._db.cipher.decrypt(row.ciphertext, bound_to=row.connection_id))
        return CredentialRecord(
            connection_id=row.connection_id,
            values={k: Secret(str(v)) for k, v in plain.items()},
            expires_at=row.expires_at,
            version=row.version,
            refresh_failures=row.refresh_failures,
            retry_after=row.retry_after,
            issued_at=row.issued_at,
        )

    @asynccontextmanager
    async def lock_credential(self, connection_id: str) -> AsyncIterator[HeldCredential]:
        """The connection's credential row, read under a lock that keeps every other refresh
        of it — in any process — out until the block ends; its writes commit at the end.

        On PostgreSQL the lock is the row's write lock, taken at once (a no-op UPDATE), which
        also excludes other replicas. On a SQLite file (one host) it is a host lock
        (`engine.host_lock`), so the database's single write lock is taken only by the held
        row's writes, after the provider has answered, instead of stalling every other write
        for as long as the token endpoint takes.
        """
        async with (
            host_lock(self._db.engine, connection_id) as host_locked,
            self._db.sessions() as session,
            session.begin(),
        ):
            if not host_locked:
                await _update_credential(session, connection_id)
            row = await session.get(Credential, connection_id, populate_existing=True)
            yield HeldCredential(self, session, connection_id, row, row_locked=not host_locked)


class HeldCredential:
    """A credential row as read under `ConnectionRepository.lock_credential`.

    Every write is conditional on the row still having the version read: under the row lock
    it always has; under the host lock a re-authorization (which takes no host lock) may have
    written it while the provider answered, and then what it stored stands.
    """

    def __init__(
        self,
        repo: ConnectionRepository,
        session: AsyncSession,
        connection_id: str,
        row: Credential | None,
        row_locked: bool,
    ) -> None:
        self._repo = repo
        self._session = session
        self._connection_id = connection_id
        self._row_locked = row_locked
        self.credential = None if row is None else repo.decrypt(row)
        """What the row held when the lock was taken; None if the connection has none."""

    def _version(self) -> int:
        assert self.credential is not None, "no credential row to write"
        return self.credential.version

    async def store_tokens(
        self, values: dict[str, str], expires_at: datetime | None, issued_at: datetime
    ) -> CredentialRecord | None:
        """Replace the token set (a new version, failures cleared); None if the row moved on."""
        cipher = self._repo.cipher
        version = self._version() + 1
        changes = {
            "ciphertext": cipher.encrypt(orjson.dumps(values), bound_to=self._connection_id),
            "key_id": cipher.primary_key_id,
            "expires_at": expires_at,
            "issued_at": issued_at,
            "version": version,
            "refresh_failures": 0,
            "retry_after": None,
            "updated_at": issued_at,
            "refresh_claimed_until": None,
        }
        if not await _update_credential(
            self._session, self._connection_id, self._version(), changes
        ):
            return None
        await self._record(EventType.CONNECTION_REFRESHED, {"version": version})
        return CredentialRecord(
            connection_id=self._connection_id,
            values={name: Secret(value) for name, value in values.items()},
            expires_at=expires_at,
            version=version,
            refresh_failures=0,
            retry_after=None,
            issued_at=issued_at,
        )

    async def still_current(self) -> bool:
        """Whether the row still has the version read; under the host lock this takes the
        database write lock, so it keeps that version until the block ends."""
        if self._row_locked:
            return True
        return await _update_credential(self._session, self._connection_id, self._version())

    async def record_failure(
        self, failures: int, retry_after: datetime, now: datetime
    ) -> CredentialRecord | None:
        """Store a failed refresh: how many in a row, and when to try again; None if the row
        moved on."""
        changes = {"refresh_failures": failures, "retry_after": retry_after, "updated_at": now}
        if not await _update_credential(
            self._session, self._connection_id, self._version(), changes
        ):
            return None
        await self._record(
            EventType.CONNECTION_REFRESH_FAILED,
            {"failures": failures, "retry_after": retry_after.isoformat()},
        )
        assert self.credential is not None
        return replace(self.credential, refresh_failures=failures, retry_after=retry_after)

    async def _record(self, type: EventType, data: dict[str, Any]) -> None:
        """Record a refresh event in the held row's transaction (it commits with the row)."""
        found = (
            await self._session.execute(
                select(Connection.workspace_id, Connection.app).where(
                    Connection.id == self._connection_id
                )
            )
        ).first()
        if found is not None:
            await record_event(
                self._session,
                workspace_id=found[0],
                type=type,
                actor=KEYGATE,
                connection_id=self._connection_id,
                data={"app": found[1], **data},
            )

    async def latest(self) -> CredentialRecord | None:
        """The row as stored now (after another writer moved it on); None if it is gone."""
        row = await self._session.get(Credential, self._connection_id, populate_existing=True)
        return None if row is None else self._repo.decrypt(row)


async def _update_credential(
    session: AsyncSession,
    connection_id: str,
    version: int | None = None,
    changes: dict[str, Any] | None = None,
) -> bool:
    """UPDATE the credential row with `changes` — by default none, which only takes its write
    lock (a row lock on PostgreSQL, the database write lock on SQLite) — if it still has
    `version` when one is given; whether a row was updated."""
    statement = update(Credential).where(Credential.connection_id == connection_id)
    if version is not None:
        statement = statement.where(Credential.version == version)
    result = await session.execute(
        statement.values(changes or {"version": Credential.version}),
        execution_options={"synchronize_session": False},
    )
    return bool(getattr(result, "rowcount", 0))
