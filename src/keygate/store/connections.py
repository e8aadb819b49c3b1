"""Connections and their encrypted credentials."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select

from keygate.secret import Secret
from keygate.store.database import Database
from keygate.store.records import ConnectionRecord, CredentialRecord, Status
from keygate.store.schema import Connection, Credential, utcnow


def _record(row: Connection) -> ConnectionRecord:
    return ConnectionRecord(
        seq=row.seq,
        id=row.id,
        workspace_id=row.workspace_id,
        app=row.app,
        method=row.method,
        status=Status(row.status),
        metadata=dict(row.metadata_ or {}),
        scopes=row.scopes,
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
    ) -> ConnectionRecord:
        """A new PENDING connection."""
        now = utcnow()
        row = Connection(
            id=str(uuid.uuid4()),
            workspace_id=workspace_id,
            app=app,
            method=method,
            status=Status.PENDING.value,
            metadata_=metadata,
            scopes=scopes,
            error_code=None,
            error_message=None,
            created_at=now,
            updated_at=now,
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
        return _record(row)

    async def get(
        self, connection_id: str, workspace_id: str | None = None
    ) -> ConnectionRecord | None:
        """The connection, if it exists (and, when given, belongs to that workspace)."""
        query = select(Connection).where(Connection.id == connection_id)
        if workspace_id is not None:
            query = query.where(Connection.workspace_id == workspace_id)
        async with self._db.read() as session:
            row = await session.scalar(query)
        return None if row is None else _record(row)

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
            rows = [_record(r) for r in await session.scalars(query)]
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
        return None if row is None else _record(row)

    async def delete(self, connection_id: str) -> None:
        """Remove the connection and, by cascade, its credentials and sessions."""
        async with self._db.write() as session:
            await session.execute(
                delete(Credential).where(Credential.connection_id == connection_id)
            )
            await session.execute(delete(Connection).where(Connection.id == connection_id))

    async def set_status(
        self,
        connection_id: str,
        status: Status,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> ConnectionRecord | None:
        """Change the status (and error) of a connection."""
        async with self._db.write() as session:
            row = await session.scalar(select(Connection).where(Connection.id == connection_id))
            if row is None:
                return None
            row.status = status.value
            row.error_code, row.error_message = error_code, error_message
            row.updated_at = utcnow()
            return _record(row)

    async def activate(
        self, connection_id: str, values: dict[str, str], expires_at: datetime | None
    ) -> ConnectionRecord | None:
        """Store fresh credentials and make the connection ACTIVE, in one transaction."""
        async with self._db.write() as session:
            row = await session.scalar(select(Connection).where(Connection.id == connection_id))
            if row is None:
                return None
            await self._put_credentials(session, connection_id, values, expires_at)
            row.status = Status.ACTIVE.value
            row.error_code = row.error_message = None
            row.updated_at = utcnow()
            return _record(row)

    async def _put_credentials(
        self, session: Any, connection_id: str, values: dict[str, str], expires_at: datetime | None
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
                    version=1,
                    refresh_failures=0,
                    retry_after=None,
                    updated_at=now,
                )
            )
        else:
            existing.ciphertext = ciphertext
            existing.key_id = self._db.cipher.primary_key_id
            existing.expires_at = expires_at
            existing.version += 1
            existing.refresh_failures = 0
            existing.retry_after = None
            existing.updated_at = now

    async def credentials(self, connection_id: str) -> CredentialRecord | None:
        """The decrypted credentials of a connection."""
        async with self._db.read() as session:
            row = await session.get(Credential, connection_id)
        return None if row is None else self.decrypt(row)

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
        )
