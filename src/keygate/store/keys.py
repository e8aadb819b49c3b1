"""Workspaces and API keys. Keys are shown once at creation and stored only as hashes."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update

from keygate.crypto import hash_api_key
from keygate.store.database import Database
from keygate.store.events import OPERATOR, EventType, record_event
from keygate.store.records import ApiKeyRecord, WorkspaceRecord
from keygate.store.schema import ApiKey, Workspace, utcnow

KEY_PREFIX = "kg_"
_DISPLAY_CHARS = 8


def generate_api_key() -> str:
    """A new high-entropy key (256 bits) with the recognisable `kg_` prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(key: str) -> str:
    """The part of a key safe to show and store in the clear."""
    return key[: len(KEY_PREFIX) + _DISPLAY_CHARS]


def _workspace(row: Workspace) -> WorkspaceRecord:
    return WorkspaceRecord(row.id, row.name, row.created_at)


def _key(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        row.id,
        row.workspace_id,
        row.prefix,
        row.name,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )


class KeyRepository:
    """Workspaces and their API keys."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_workspace(self, name: str) -> WorkspaceRecord | None:
        """The workspace with that name."""
        async with self._db.read() as session:
            row = await session.scalar(select(Workspace).where(Workspace.name == name))
        return None if row is None else _workspace(row)

    async def ensure_workspace(self, name: str) -> WorkspaceRecord:
        """The workspace with that name, created if missing."""
        existing = await self.get_workspace(name)
        if existing is not None:
            return existing
        row = Workspace(id=str(uuid.uuid4()), name=name, created_at=utcnow())
        async with self._db.write() as session:
            session.add(row)
        return _workspace(row)

    async def list_workspaces(self) -> list[WorkspaceRecord]:
        """Every workspace, oldest first."""
        async with self._db.read() as session:
            rows = await session.scalars(select(Workspace).order_by(Workspace.created_at))
            return [_workspace(r) for r in rows]

    async def create_key(
        self, workspace_id: str, name: str = "", *, actor: str = OPERATOR
    ) -> tuple[str, ApiKeyRecord]:
        """A new key for the workspace: the plain key (show it once) and its record (and the
        `api_key.created` event, by `actor`)."""
        key = generate_api_key()
        row = ApiKey(
            id=str(uuid.uuid4()),
            workspace_id=workspace_id,
            prefix=display_prefix(key),
            key_hash=hash_api_key(key),
            name=name,
            created_at=utcnow(),
            last_used_at=None,
            revoked_at=None,
        )
        async with self._db.write() as session:
            session.add(row)
            await session.flush()
            await record_event(
                session,
                workspace_id=workspace_id,
                type=EventType.API_KEY_CREATED,
                actor=actor,
                data={"key_id": row.id, "key_prefix": row.prefix, "name": name},
            )
        return key, _key(row)

    async def list_keys(self, workspace_id: str | None = None) -> list[ApiKeyRecord]:
        """Keys (of one workspace, or all), oldest first."""
        query = select(ApiKey).order_by(ApiKey.created_at)
        if workspace_id is not None:
            query = query.where(ApiKey.workspace_id == workspace_id)
        async with self._db.read() as session:
            return [_key(r) for r in await session.scalars(query)]

    async def revoke_key(self, prefix: str, *, actor: str = OPERATOR) -> ApiKeyRecord | None:
        """Revoke the key with that display prefix (recording `api_key.revoked`, by `actor`);
        None if there is none."""
        async with self._db.write() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                await record_event(
                    session,
                    workspace_id=row.workspace_id,
                    type=EventType.API_KEY_REVOKED,
                    actor=actor,
                    data={"key_id": row.id, "key_prefix": row.prefix},
                )
            return _key(row)

    async def find_active_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The unrevoked key with that hash."""
        async with self._db.read() as session:
            row = await session.scalar(
                select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
            )
        return None if row is None else _key(row)

    async def record_use(self, uses: Iterable[tuple[str, datetime]]) -> None:
        """Store last-used times gathered off the hot path (no epoch bump: not cached state)."""
        async with self._db.sessions() as session, session.begin():
            for key_id, when in uses:
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when)
                )
