"""The delivery worker: sends the webhook outbox, at least once, in order per endpoint.

Each process runs one. Every `poll_interval` it claims the queues of endpoints with a delivery
due (`WebhookRepository.claim_endpoints`, an atomic UPDATE: one process per endpoint, across
replicas) and sends each endpoint's oldest pending delivery, then the next, until none is due.
A delivery is signed with the `standardwebhooks` library (`webhook-id` is the delivery's id,
the same on every attempt; `webhook-timestamp` the attempt's time).

Outcomes: a 2xx is delivered. A 410 Gone disables the endpoint. Anything else (another status,
a timeout, a refused connection, a destination the allow-list no longer admits) is retried on
`KEYGATE_WEBHOOK_RETRY_SCHEDULE`, no sooner than a `Retry-After` the receiver sent (capped at a
day); once the schedule is spent the delivery is marked failed and the next one goes. Every
attempt is recorded. A process killed mid-delivery never recorded the attempt: when its lease
runs out (`KEYGATE_WEBHOOK_LEASE_SECONDS`) the delivery is sent again, with the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial

import httpx
from standardwebhooks.webhooks import Webhook

from keygate import metrics
from keygate.errors import KeygateError, StoreUnavailable
from keygate.store.schema import utcnow
from keygate.store.webhooks import AttemptRecord, DeliveryRecord, WebhookRepository
from keygate.webhooks.destinations import DestinationPolicy

log = logging.getLogger("keygate.webhooks")

_MAX_RETRY_AFTER = 86_400.0
_MAX_ERROR = 500


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A `Retry-After` value (seconds or an HTTP date) as seconds from now, if valid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), _MAX_RETRY_AFTER)


class DeliveryWorker:
    """Sends due deliveries with `client`; `schedule` is the retry schedule in seconds."""

    def __init__(
        self,
        webhooks: WebhookRepository,
        policy: DestinationPolicy,
        *,
        schedule: list[float],
        poll_interval: float,
        lease_seconds: float,
        timeout: float,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._webhooks = webhooks
        self._policy = policy
        self._schedule = schedule
        self._poll_interval = poll_interval
        self._lease = timedelta(seconds=lease_seconds)
        self._client = client or httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        )
        # Deliveries pinned to an address (see `destinations`) keep no connection: a pooled one
        # is keyed by the address, and reusing it for another name on the same address would
        # skip that name's certificate check.
        self._pinned_client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling the outbox (inside the serving loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop; a delivery in flight is abandoned (its lease expires, it is sent again)."""
        tasks = [t for t in (self._task, *self._busy.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        self._busy.clear()
        await self._client.aclose()
        await self._pinned_client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                for endpoint_id in await self._webhooks.claim_endpoints(self._owner, self._lease):
                    if endpoint_id not in self._busy:
                        task = asyncio.create_task(self._drain(endpoint_id))
                        self._busy[endpoint_id] = task
                        task.add_done_callback(partial(self._done, endpoint_id))
            except StoreUnavailable:
                pass  # an outage: logged once by the store
            except Exception:
                log.exception("webhook outbox poll failed")
            await asyncio.sleep(self._poll_interval)

    def _done(self, endpoint_id: str, _task: asyncio.Task[None]) -> None:
        self._busy.pop(endpoint_id, None)

    async def _drain(self, endpoint_id: str) -> None:
        """Send the endpoint's due deliveries in order, while its lease is ours."""
        try:
            while await self._webhooks.renew_lease(endpoint_id, self._owner, self._lease):
                delivery = await self._webhooks.head(endpoint_id)
                if delivery is None or delivery.next_attempt_at > utcnow():
                    break
                target = await self._webhooks.delivery_target(endpoint_id)
                if target is None:
                    break
                url, secret = target
                await self._attempt(delivery, url, Webhook(secret.reveal()))
        except StoreUnavailable:
            return
        except Exception:
            log.exception("webhook delivery to endpoint %s failed", endpoint_id)
        with contextlib.suppress(Exception):
            await self._webhooks.release(endpoint_id, self._owner)

    async def _attempt(self, delivery: DeliveryRecord, url: str, signer: Webhook) -> None:
        """One attempt at a delivery, recorded with its outcome."""
        at = utcnow()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            destination = await self._policy.destination(url)
            headers = {
                **destination.headers,
                "content-type": "application/json",
                "user-agent": "Keygate-Webhooks",
                "webhook-id": delivery.id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signer.sign(delivery.id, at, delivery.payload),
            }
            client = self._pinned_client if destination.pinned else self._client
            response = await client.post(
                destination.url,
                content=delivery.payload,
                headers=headers,
                extensions=destination.extensions,
            )
            status = response.status_code
            retry_after = retry_after_seconds(response.headers.get("retry-after"), utcnow())
        except KeygateError as refused:
            error = refused.message
        except httpx.HTTPError as exc:
            # The exception's text may quote the URL, which the owner chose: keep to its kind.
            error = type(exc).__name__
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        attempt = AttemptRecord(at, status, latency_ms, error and error[:_MAX_ERROR])
        if status is not None and 200 <= status < 300:
            metrics.count_webhook_attempt("delivered")
            await self._webhooks.record_attempt(delivery, attempt, delivered=True, retry_at=None)
            return
        if status == 410:
            metrics.count_webhook_attempt("disabled")
            log.info("webhook endpoint %s answered 410 Gone: disabled", delivery.endpoint_id)
            await self._webhooks.record_attempt(
                delivery,
                attempt,
                delivered=False,
                retry_at=None,
                disable_reason="The endpoint answered 410 Gone.",
            )
            return
        metrics.count_webhook_attempt("failed")
        made = delivery.attempts + 1
        retry_at = None
        if made < len(self._schedule):
            delay = max(self._schedule[made], retry_after or 0.0)
            retry_at = utcnow() + timedelta(seconds=delay)
        await self._webhooks.record_attempt(delivery, attempt, delivered=False, retry_at=retry_at)
