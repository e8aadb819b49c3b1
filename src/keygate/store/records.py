"""Plain, immutable records the rest of Keygate works with (safe to cache across requests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from keygate.secret import Secret


class Status(StrEnum):
    """A connection's lifecycle state."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class WorkspaceRecord:
    """A tenant."""

    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as stored: never the key itself."""

    id: str
    workspace_id: str
    prefix: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """A connection, without its secrets."""

    seq: int
    id: str
    workspace_id: str
    app: str
    method: str
    status: Status
    metadata: dict[str, Any]
    scopes: list[str] | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    params: dict[str, str] = field(default_factory=dict)
    """The connection parameters given so far (catalog `params`), not secret."""


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A connection's decrypted secrets; `values` holds Secret-wrapped fields."""

    connection_id: str
    values: dict[str, Secret] = field(repr=False)
    expires_at: datetime | None
    version: int
    refresh_failures: int
    retry_after: datetime | None
    issued_at: datetime | None = None
    """When the access token was obtained; None if unknown (stored before Keygate recorded it)."""

    def get(self, name: str) -> str | None:
        """The plain value of one field, or None."""
        secret = self.values.get(name)
        return None if secret is None else secret.reveal()
