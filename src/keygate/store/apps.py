"""The operator's per-app settings (OAuth client, URL overrides), client secret encrypted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from keygate.catalog.loader import AppOverrides
from keygate.secret import Secret
from keygate.store.database import Database
from keygate.store.events import OPERATOR, EventType, record_event
from keygate.store.schema import AppConfig, utcnow

_FIELDS = (
    "client_id",
    "base_url",
    "authorize_url",
    "token_url",
    "revoke_url",
    "device_authorization_url",
)


class AppConfigRepository:
    """Reads and writes `app_configs`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _overrides(self, row: AppConfig) -> AppOverrides:
        secret = None
        if row.client_secret_ciphertext:
            plain = self._db.cipher.decrypt(row.client_secret_ciphertext, bound_to=f"app:{row.app}")
            secret = Secret(plain.decode())
        return AppOverrides(
            client_id=row.client_id,
            client_secret=secret,
            base_url=row.base_url,
            authorize_url=row.authorize_url,
            token_url=row.token_url,
            revoke_url=row.revoke_url,
            device_authorization_url=row.device_authorization_url,
            scopes=tuple(row.scopes) if row.scopes is not None else None,
        )

    async def all(self) -> dict[str, AppOverrides]:
        """Every app's stored overrides."""
        async with self._db.read() as session:
            rows = list(await session.scalars(select(AppConfig)))
        return {row.app: self._overrides(row) for row in rows}

    async def update(
        self, app: str, changes: dict[str, Any], *, actor: str = OPERATOR
    ) -> AppOverrides:
        """Set the given fields (None values are left alone; '' clears a field); a change of
        the OAuth client records `app.client_configured` (deployment-wide: every workspace)."""
        async with self._db.write() as session:
            row = await session.get(AppConfig, app)
            if row is None:
                row = AppConfig(app=app, updated_at=utcnow())
                session.add(row)
            for field in _FIELDS:
                if changes.get(field) is not None:
                    setattr(row, field, changes[field] or None)
            if changes.get("scopes") is not None:
                row.scopes = list(changes["scopes"]) or None
            secret = changes.get("client_secret")
            if secret is not None:
                row.client_secret_ciphertext = (
                    self._db.cipher.encrypt(secret.encode(), bound_to=f"app:{app}")
                    if secret
                    else None
                )
            row.updated_at = utcnow()
            if changes.get("client_id") is not None or secret is not None:
                await record_event(
                    session,
                    workspace_id=None,
                    type=EventType.APP_CLIENT_CONFIGURED,
                    actor=actor,
                    data={"app": app, "client_id_set": bool(row.client_id)},
                )
            return self._overrides(row)
