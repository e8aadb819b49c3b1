"""The database schema. Changes go through an Alembic migration in `migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone, so store naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (migrations depend on them)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Workspace(Base):
    """A tenant: API keys and connections belong to exactly one."""

    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime]


class ApiKey(Base):
    """A caller's key, stored only as a SHA-256 hash plus a short display prefix."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Connection(Base):
    """A link between a workspace and one account at an app; `seq` orders 'oldest first'."""

    __tablename__ = "connections"
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    app: Mapped[str] = mapped_column(String(63))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    scopes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    params: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    """The connection parameters (catalog `params`): not secret, shown in the connection."""
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_connections_workspace_app_status", "workspace_id", "app", "status"),
    )


class Credential(Base):
    """A connection's secrets, encrypted (AES-256-GCM) and bound to the connection id."""

    __tablename__ = "credentials"
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    ciphertext: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None]
    issued_at: Mapped[datetime | None]
    """When the access token was obtained (its lifetime sets the refresh margin); None on rows
    stored before Keygate recorded it."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    refresh_failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_after: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    refresh_claimed_until: Mapped[datetime | None]
    """No background refresh takes the row before this: one process's claim while it refreshes
    it, or a rest for a row with nothing to refresh. Cleared whenever new tokens are stored."""

    __table_args__ = (
        # The background scheduler's two questions: which tokens expire soon, which were
        # obtained long ago (`store/refresh_claims.py`); each a range scan of one index.
        Index("ix_credentials_expires_at", "expires_at"),
        Index("ix_credentials_issued_at", "issued_at", "updated_at"),
    )


class UiSignOut(Base):
    """A dashboard session signed out before its cookie expires: its nonce is refused until
    then (the cookie itself is stateless, so signing out must be remembered here)."""

    __tablename__ = "ui_sign_outs"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ConnectSession(Base):
    """A used connect link (single use) and, for OAuth, the pending authorization."""

    __tablename__ = "connect_sessions"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    state_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    verifier_ciphertext: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class AppConfig(Base):
    """The operator's settings for an app: OAuth client (secret encrypted) and URL overrides."""

    __tablename__ = "app_configs"
    app: Mapped[str] = mapped_column(String(63), primary_key=True)
    client_id: Mapped[str | None] = mapped_column(String(255))
    client_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    base_url: Mapped[str | None] = mapped_column(String(2048))
    authorize_url: Mapped[str | None] = mapped_column(String(2048))
    token_url: Mapped[str | None] = mapped_column(String(2048))
    revoke_url: Mapped[str | None] = mapped_column(String(2048))
    device_authorization_url: Mapped[str | None] = mapped_column(String(2048))
    scopes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime]


class CacheEpoch(Base):
    """One row whose value every write bumps; processes poll it to drop stale caches."""

    __tablename__ = "cache_epoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class RateBucket(Base):
    """A key's fleet-wide rate-limit bucket, which replicas lease tokens from in small batches
    (see `keygate.gateway.ratelimit`); times are the database's clock, in epoch seconds."""

    __tablename__ = "rate_buckets"
    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    """What the bucket held at `stamp`, after the lease made then."""
    stamp: Mapped[float] = mapped_column(Float)
    granted: Mapped[int] = mapped_column(Integer)
    """How many tokens the last lease took (the statement's answer)."""
    leases: Mapped[int] = mapped_column(BigInteger)
    """Leases taken since the bucket was created (what the limit costs the database)."""


class RequestLogChunkRow(Base):
    """A run of one workspace's gateway requests, as the request log keeps them: one row per
    workspace per write, off the hot path, pruned by age and count.

    One row per request cost about 17 µs of CPU each on SQLite (a fifth of a proxied request);
    a chunk costs under 1 µs a request plus about 60 µs a write (`keygate.store.request_logs`).
    Its entries are packed in `data`; the other columns summarise them, so a filtered read
    skips, inside the database, every chunk that cannot match, and decodes only the others.
    Never a query value, a body or a credential."""

    __tablename__ = "request_log_chunks"
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(String(36))
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    rows: Mapped[int] = mapped_column(Integer)
    apps: Mapped[str] = mapped_column(Text)
    """The entries' apps, each between spaces: ` klaviyo constant-contact `."""
    connections: Mapped[str] = mapped_column(Text)
    """The entries' connection ids, each between spaces (requests without one add none)."""
    statuses: Mapped[int] = mapped_column(Integer)
    """A bit per status class present: 1 << (status // 100)."""
    data: Mapped[bytes] = mapped_column(LargeBinary)
    """The entries, oldest first: MessagePack, zlib-compressed (`request_logs.pack`); last, so
    a filtered scan reads the summary columns without the entries' overflow pages."""

    __table_args__ = (
        Index("ix_request_log_chunks_workspace_seq", "workspace_id", "seq"),
        Index("ix_request_log_chunks_first_at", "first_at"),
    )


class EventRow(Base):
    """An audit event: what happened, when, who did it, and the ids involved (never a secret).

    `workspace_id` is None for a deployment-wide event (an app's OAuth client configured by the
    operator), which every workspace sees."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    workspace_id: Mapped[str | None] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    connection_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_events_workspace_seq", "workspace_id", "seq"),)


class WebhookEndpointRow(Base):
    """A workspace's webhook endpoint: where to deliver which event types, and the signing
    secret (encrypted, bound to the endpoint id). `lease_*` is the claim a delivery worker
    holds on the endpoint's queue, so one process at a time delivers it, in order."""

    __tablename__ = "webhook_endpoints"
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class WebhookDeliveryRow(Base):
    """The outbox: one event to one endpoint, written in the event's transaction. Its `id` is
    the `webhook-id` of every attempt (and of a redelivery), so receivers can deduplicate."""

    __tablename__ = "webhook_deliveries"
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_status_seq", "endpoint_id", "status", "seq"),
    )


class WebhookAttemptRow(Base):
    """One try at a delivery: the receiver's status (None if none came), latency and error."""

    __tablename__ = "webhook_attempts"
    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
