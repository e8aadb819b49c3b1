"""`/webhooks`: register, list, show, delete a workspace's webhook endpoints; redeliver."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keygate.control.auth import CallerDep
from keygate.control.deps import DestinationCheckDep, WebhooksDep
from keygate.control.openapi import error_responses
from keygate.control.record_views import delivery_view, webhook_view
from keygate.errors import BadRequest, NotFoundError, describe_validation
from keygate.store.events import EventType
from keygate.store.webhooks import EndpointRecord, WebhookRepository

router = APIRouter(tags=["webhooks"])
_TYPES = [t.value for t in EventType]


class CreateWebhook(BaseModel):
    """The body of `POST /webhooks`."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048)
    event_types: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=lambda: list(_TYPES), min_length=1, max_length=100
    )

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in _TYPES]
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(_TYPES)}")
        return list(dict.fromkeys(value))


_ENDPOINT_ID = re.compile(r"wh_[0-9a-f]{32}")
_DELIVERY_ID = re.compile(r"msg_[0-9a-f]{32}")


async def _endpoint(
    webhooks: WebhookRepository, workspace_id: str, webhook_id: str
) -> EndpointRecord:
    """The workspace's endpoint (checked for form before the database sees the id), or 404."""
    record = None
    if _ENDPOINT_ID.fullmatch(webhook_id):
        record = await webhooks.get(workspace_id, webhook_id)
    if record is None:
        raise NotFoundError("No webhook endpoint with that id in this workspace.")
    return record


@router.post(
    "/webhooks",
    status_code=201,
    summary="Register a webhook endpoint (its secret is shown once, here)",
    response_model=None,
    responses=error_responses(400, 401, 413, 503),
)
async def create_webhook(
    request: Request,
    webhooks: WebhooksDep,
    check_destination: DestinationCheckDep,
    caller: CallerDep,
) -> JSONResponse:
    """A new endpoint for the workspace; the answer holds its `whsec_` signing secret."""
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest('The body must be a JSON object, e.g. {"url": "https://…"}.')
    try:
        body = CreateWebhook.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc)) from None
    await check_destination(body.url)
    secret, record = await webhooks.create(caller.workspace_id, body.url, body.event_types)
    return JSONResponse({"webhook": webhook_view(record, secret)}, status_code=201)


@router.get(
    "/webhooks",
    summary="List webhook endpoints",
    response_model=None,
    responses=error_responses(401, 503),
)
async def list_webhooks(webhooks: WebhooksDep, caller: CallerDep) -> dict[str, Any]:
    """The workspace's endpoints, oldest first (never their secrets)."""
    return {
        "webhooks": [webhook_view(r) for r in await webhooks.list_endpoints(caller.workspace_id)]
    }


@router.get(
    "/webhooks/{webhook_id}",
    summary="Show a webhook endpoint and its recent deliveries",
    response_model=None,
    responses=error_responses(401, 404, 503),
)
async def get_webhook(webhook_id: str, webhooks: WebhooksDep, caller: CallerDep) -> dict[str, Any]:
    """One endpoint and its latest 20 deliveries (newest first), each with its attempts."""
    record = await _endpoint(webhooks, caller.workspace_id, webhook_id)
    deliveries = await webhooks.recent_deliveries(record.id)
    return {"webhook": webhook_view(record), "deliveries": [delivery_view(d) for d in deliveries]}


@router.delete(
    "/webhooks/{webhook_id}",
    summary="Delete a webhook endpoint",
    response_model=None,
    responses=error_responses(401, 404, 503),
)
async def delete_webhook(
    webhook_id: str, webhooks: WebhooksDep, caller: CallerDep
) -> dict[str, Any]:
    """Forget the endpoint and its queued deliveries."""
    record = await _endpoint(webhooks, caller.workspace_id, webhook_id)
    await webhooks.delete(caller.workspace_id, record.id)
    return {"webhook": webhook_view(record)}


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again (same webhook-id)",
    response_model=None,
    responses=error_responses(401, 404, 503),
)
async def redeliver(
    webhook_id: str, delivery_id: str, webhooks: WebhooksDep, caller: CallerDep
) -> JSONResponse:
    """Queue the delivery again now; the receiver sees the same `webhook-id`."""
    record = await _endpoint(webhooks, caller.workspace_id, webhook_id)
    if record.status != "enabled":
        raise BadRequest("This endpoint is disabled; register it again to receive deliveries.")
    delivery = None
    if _DELIVERY_ID.fullmatch(delivery_id):
        delivery = await webhooks.redeliver(record.id, delivery_id)
    if delivery is None:
        raise NotFoundError("No delivery with that id for this webhook endpoint.")
    return JSONResponse({"delivery": delivery_view(delivery)}, status_code=202)
