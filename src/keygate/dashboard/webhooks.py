"""The webhooks pages: endpoints (the secret shown once), recent deliveries, redeliver."""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from keygate.control.deps import DestinationCheckDep, WebhooksDep
from keygate.dashboard.guard import CheckedFormDep, PageNotFound, ViewerDep, form_text
from keygate.dashboard.render import page
from keygate.dashboard.signin import redirect
from keygate.errors import BadRequest
from keygate.store.events import EventType
from keygate.store.webhooks import EndpointRecord, WebhookRepository

log = logging.getLogger("keygate.dashboard")
router = APIRouter(include_in_schema=False)
EVENT_TYPES = [t.value for t in EventType]
_ENDPOINT_ID = re.compile(r"wh_[0-9a-f]{32}")
_DELIVERY_ID = re.compile(r"msg_[0-9a-f]{32}")


async def _own(webhooks: WebhookRepository, workspace_id: str, webhook_id: str) -> EndpointRecord:
    record = None
    if _ENDPOINT_ID.fullmatch(webhook_id):
        record = await webhooks.get(workspace_id, webhook_id)
    if record is None:
        raise PageNotFound
    return record


def _list_page(
    request: Request,
    viewer: ViewerDep,
    endpoints: list[EndpointRecord],
    *,
    created: tuple[str, EndpointRecord] | None = None,
    error: str | None = None,
    url: str = "",
    status: int = 200,
) -> Response:
    context = {
        "endpoints": endpoints,
        "event_types": EVENT_TYPES,
        "secret": created[0] if created else None,
        "created": created[1] if created else None,
        "error": error,
        "url": url,
    }
    return page(request, "webhooks.html", viewer, context, status, section="webhooks")


@router.get("/ui/webhooks")
async def webhooks_page(request: Request, viewer: ViewerDep, webhooks: WebhooksDep) -> Response:
    """The workspace's endpoints and the form to register one."""
    return _list_page(request, viewer, await webhooks.list_endpoints(viewer.workspace_id))


@router.post("/ui/webhooks")
async def create_webhook(
    request: Request,
    viewer: ViewerDep,
    form: CheckedFormDep,
    webhooks: WebhooksDep,
    check_destination: DestinationCheckDep,
) -> Response:
    """Register an endpoint; its signing secret is on this response only."""
    url = form_text(form, "url", 2048)
    chosen = [t for t in form.getlist("event_types") if isinstance(t, str) and t in EVENT_TYPES]
    endpoints = await webhooks.list_endpoints(viewer.workspace_id)
    if not chosen:
        return _list_page(
            request, viewer, endpoints, error="Choose at least one event type.", url=url, status=400
        )
    try:
        await check_destination(url)
    except BadRequest as exc:
        return _list_page(request, viewer, endpoints, error=exc.message, url=url, status=400)
    secret, record = await webhooks.create(viewer.workspace_id, url, list(dict.fromkeys(chosen)))
    log.info("webhook endpoint %s registered from the dashboard", record.id)
    endpoints = await webhooks.list_endpoints(viewer.workspace_id)
    return _list_page(request, viewer, endpoints, created=(secret, record), status=201)


@router.get("/ui/webhooks/{webhook_id}")
async def webhook_page(
    request: Request, webhook_id: str, viewer: ViewerDep, webhooks: WebhooksDep
) -> Response:
    """One endpoint and its recent deliveries (the fragment alone for htmx's refresh)."""
    record = await _own(webhooks, viewer.workspace_id, webhook_id)
    deliveries = await webhooks.recent_deliveries(record.id)
    template = "_deliveries.html" if request.headers.get("hx-request") else "webhook.html"
    context = {"endpoint": record, "deliveries": deliveries, "event_types": EVENT_TYPES}
    return page(request, template, viewer, context, section="webhooks")


@router.post("/ui/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    webhook_id: str,
    delivery_id: str,
    viewer: ViewerDep,
    form: CheckedFormDep,
    webhooks: WebhooksDep,
) -> Response:
    """Queue a delivery again (the receiver sees the same webhook-id)."""
    record = await _own(webhooks, viewer.workspace_id, webhook_id)
    delivery = None
    if _DELIVERY_ID.fullmatch(delivery_id) and record.status == "enabled":
        delivery = await webhooks.redeliver(record.id, delivery_id)
    if delivery is None:
        raise PageNotFound
    return redirect(f"/ui/webhooks/{record.id}?redelivered={delivery.id}")


@router.post("/ui/webhooks/{webhook_id}/delete")
async def delete_webhook(
    webhook_id: str, viewer: ViewerDep, form: CheckedFormDep, webhooks: WebhooksDep
) -> Response:
    """Forget the endpoint and its queued deliveries."""
    record = await _own(webhooks, viewer.workspace_id, webhook_id)
    await webhooks.delete(viewer.workspace_id, record.id)
    log.info("webhook endpoint %s deleted from the dashboard", record.id)
    return redirect("/ui/webhooks?deleted=1")
