"""Webhook endpoints, their outbox of deliveries, and the attempts made at each.

The delivery worker (`keygate.webhooks.worker`) claims an endpoint's queue with one atomic
UPDATE of the endpoint row (`claim_endpoints`): the claim, a lease, is held by one process at a
time, so with several replicas on one database each endpoint is delivered by one of them, in
order (the oldest pending delivery first; a later one waits until it is delivered or has
failed for good). A process that dies holding a lease leaves it to expire; whoever claims the
endpoint next sends the same delivery again, with the same `webhook-id`.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from keygate.secret import Secret
from keygate.store.database import Database
from keygate.store.schema import (
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    utcnow,
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
ENABLED = "enabled"
DISABLED = "disabled"


def generate_webhook_secret() -> str:
    """A new signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """A webhook endpoint, without its secret."""

    seq: int
    id: str
    workspace_id: str
    url: str
    event_types: list[str]
    status: str
    disabled_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One try at a delivery."""

    at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One event for one endpoint; `id` is its `webhook-id`."""

    seq: int
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    payload: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    history: tuple[AttemptRecord, ...] = ()


def _endpoint(row: WebhookEndpointRow) -> EndpointRecord:
    return EndpointRecord(
        row.seq,
        row.id,
        row.workspace_id,
        row.url,
        list(row.event_types),
        row.status,
        row.disabled_reason,
        row.created_at,
    )


def _delivery(row: WebhookDeliveryRow, history: tuple[AttemptRecord, ...] = ()) -> DeliveryRecord:
    return DeliveryRecord(
        row.seq,
        row.id,
        row.endpoint_id,
        row.event_id,
        row.event_type,
        row.payload,
        row.status,
        row.attempts,
        row.next_attempt_at,
        row.created_at,
        row.delivered_at,
        history,
    )


class WebhookRepository:
    """Endpoints (per workspace), deliveries and attempts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- endpoints, as the API manages them -----------------------------------------------

    async def create(
        self, workspace_id: str, url: str, event_types: list[str]
    ) -> tuple[str, EndpointRecord]:
        """A new enabled endpoint: its secret (show it once) and its record."""
        endpoint_id = "wh_" + uuid.uuid4().hex
        secret = generate_webhook_secret()
        row = WebhookEndpointRow(
            id=endpoint_id,
            workspace_id=workspace_id,
            url=url,
            event_types=event_types,
            secret_ciphertext=self._db.cipher.encrypt(secret.encode(), bound_to=endpoint_id),
            status=ENABLED,
            disabled_reason=None,
            created_at=utcnow(),
            lease_owner=None,
            lease_until=None,
        )
        async with self._db.sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            return secret, _endpoint(row)

    async def list_endpoints(self, workspace_id: str) -> list[EndpointRecord]:
        """A workspace's endpoints, oldest first."""
        query = (
            select(WebhookEndpointRow)
            .where(WebhookEndpointRow.workspace_id == workspace_id)
            .order_by(WebhookEndpointRow.seq)
        )
        async with self._db.read() as session:
            return [_endpoint(r) for r in await session.scalars(query)]

    async def get(self, workspace_id: str, endpoint_id: str) -> EndpointRecord | None:
        """One endpoint of the workspace (None for another workspace's)."""
        async with self._db.read() as session:
            row = await session.scalar(
                select(WebhookEndpointRow).where(
                    WebhookEndpointRow.id == endpoint_id,
                    WebhookEndpointRow.workspace_id == workspace_id,
                )
            )
        return None if row is None else _endpoint(row)

    async def delete(self, workspace_id: str, endpoint_id: str) -> bool:
        """Delete an endpoint with its deliveries; whether it existed in the workspace."""
        async with self._db.sessions() as session, session.begin():
            found = await session.scalar(
                select(WebhookEndpointRow.id).where(
                    WebhookEndpointRow.id == endpoint_id,
                    WebhookEndpointRow.workspace_id == workspace_id,
                )
            )
            if found is None:
                return False
            deliveries = select(WebhookDeliveryRow.id).where(
                WebhookDeliveryRow.endpoint_id == endpoint_id
            )
            # Spelled out: SQLite enforces ON DELETE CASCADE only with its foreign-key pragma.
            await session.execute(
                delete(WebhookAttemptRow).where(WebhookAttemptRow.delivery_id.in_(deliveries))
            )
            await session.execute(
                delete(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id)
            )
            await session.execute(
                delete(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint_id)
            )
        return True

    async def recent_deliveries(self, endpoint_id: str, limit: int = 20) -> list[DeliveryRecord]:
        """An endpoint's latest deliveries, newest first, each with its attempts."""
        async with self._db.read() as session:
            rows = list(
                await session.scalars(
                    select(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.endpoint_id == endpoint_id)
                    .order_by(WebhookDeliveryRow.seq.desc())
                    .limit(limit)
                )
            )
            attempts = await session.scalars(
                select(WebhookAttemptRow)
                .where(WebhookAttemptRow.delivery_id.in_([r.id for r in rows]))
                .order_by(WebhookAttemptRow.seq)
            )
            history: dict[str, list[AttemptRecord]] = {}
            for a in attempts:
                history.setdefault(a.delivery_id, []).append(
                    AttemptRecord(a.at, a.status_code, a.latency_ms, a.error)
                )
        return [_delivery(r, tuple(history.get(r.id, ()))) for r in rows]

    async def redeliver(self, endpoint_id: str, delivery_id: str) -> DeliveryRecord | None:
        """Queue a delivery again, now, with the same `webhook-id` (None if the endpoint has
        no such delivery)."""
        async with self._db.sessions() as session, session.begin():
            row = await session.scalar(
                select(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.id == delivery_id,
                    WebhookDeliveryRow.endpoint_id == endpoint_id,
                )
            )
            if row is None:
                return None
            row.status = PENDING
            row.attempts = 0
            row.next_attempt_at = utcnow()
            row.delivered_at = None
            return _delivery(row)

    # --- the delivery worker's side -------------------------------------------------------

    async def claim_endpoints(self, owner: str, lease: timedelta, limit: int = 50) -> list[str]:
        """Claim (or renew) the queues of endpoints with a delivery due; their ids."""
        now = utcnow()
        due = (
            select(WebhookDeliveryRow.endpoint_id)
            .where(
                WebhookDeliveryRow.status == PENDING,
                WebhookDeliveryRow.next_attempt_at <= now,
            )
            .distinct()
        )
        async with self._db.read() as session:
            candidates = list(
                await session.scalars(
                    select(WebhookEndpointRow.id)
                    .where(
                        WebhookEndpointRow.status == ENABLED,
                        WebhookEndpointRow.id.in_(due),
                        or_(
                            WebhookEndpointRow.lease_until.is_(None),
                            WebhookEndpointRow.lease_until < now,
                            WebhookEndpointRow.lease_owner == owner,
                        ),
                    )
                    .limit(limit)
                )
            )
        return [e for e in candidates if await self.renew_lease(e, owner, lease)]

    async def renew_lease(self, endpoint_id: str, owner: str, lease: timedelta) -> bool:
        """Take or extend the claim on an endpoint's queue: one atomic UPDATE that succeeds
        only if the lease is free, expired or already `owner`'s."""
        now = utcnow()
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(
                update(WebhookEndpointRow)
                .where(
                    WebhookEndpointRow.id == endpoint_id,
                    WebhookEndpointRow.status == ENABLED,
                    or_(
                        WebhookEndpointRow.lease_until.is_(None),
                        WebhookEndpointRow.lease_until < now,
                        WebhookEndpointRow.lease_owner == owner,
                    ),
                )
                .values(lease_owner=owner, lease_until=now + lease),
                execution_options={"synchronize_session": False},
            )
        return bool(getattr(result, "rowcount", 0))

    async def release(self, endpoint_id: str, owner: str) -> None:
        """Give up the claim on an endpoint's queue (if still held)."""
        async with self._db.sessions() as session, session.begin():
            await session.execute(
                update(WebhookEndpointRow)
                .where(
                    WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.lease_owner == owner
                )
                .values(lease_owner=None, lease_until=None),
                execution_options={"synchronize_session": False},
            )

    async def delivery_target(self, endpoint_id: str) -> tuple[str, Secret] | None:
        """An enabled endpoint's URL and signing secret (decrypted)."""
        async with self._db.read() as session:
            row = await session.scalar(
                select(WebhookEndpointRow).where(
                    WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.status == ENABLED
                )
            )
        if row is None:
            return None
        plain = self._db.cipher.decrypt(row.secret_ciphertext, bound_to=row.id)
        return row.url, Secret(plain.decode())

    async def head(self, endpoint_id: str) -> DeliveryRecord | None:
        """The endpoint's oldest pending delivery: the only one that may be sent now."""
        async with self._db.read() as session:
            row = await session.scalar(
                select(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.endpoint_id == endpoint_id,
                    WebhookDeliveryRow.status == PENDING,
                )
                .order_by(WebhookDeliveryRow.seq)
                .limit(1)
            )
        return None if row is None else _delivery(row)

    async def prune_finished(self, max_age: timedelta) -> int:
        """Delete deliveries done (delivered, or failed for good) whose event is older than
        `max_age`, with their attempts; how many. A pending delivery is never pruned."""
        async with self._db.sessions() as session, session.begin():
            result = await session.execute(
                delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.status.in_((DELIVERED, FAILED)),
                    WebhookDeliveryRow.created_at < utcnow() - max_age,
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def record_attempt(
        self,
        delivery: DeliveryRecord,
        attempt: AttemptRecord,
        *,
        delivered: bool,
        retry_at: datetime | None,
        disable_reason: str | None = None,
    ) -> None:
        """Store an attempt and its outcome: delivered; to retry at `retry_at`; failed for good
        (neither); and, with `disable_reason`, the endpoint disabled (the delivery stays
        pending)."""
        async with self._db.sessions() as session, session.begin():
            session.add(
                WebhookAttemptRow(
                    delivery_id=delivery.id,
                    at=attempt.at,
                    status_code=attempt.status_code,
                    latency_ms=attempt.latency_ms,
                    error=attempt.error,
                )
            )
            changes: dict[str, object] = {"attempts": WebhookDeliveryRow.attempts + 1}
            if delivered:
                changes.update(status=DELIVERED, delivered_at=attempt.at)
            elif disable_reason is not None:
                pass  # kept pending: the endpoint is disabled, nothing more is sent to it
            elif retry_at is not None:
                changes.update(next_attempt_at=retry_at)
            else:
                changes.update(status=FAILED)
            await session.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == delivery.id)
                .values(**changes),
                execution_options={"synchronize_session": False},
            )
            if disable_reason is not None:
                await session.execute(
                    update(WebhookEndpointRow)
                    .where(WebhookEndpointRow.id == delivery.endpoint_id)
                    .values(
                        status=DISABLED,
                        disabled_reason=disable_reason,
                        lease_owner=None,
                        lease_until=None,
                    ),
                    execution_options={"synchronize_session": False},
                )
