"""Constant Contact custom fields: `/v3/contact_custom_fields` and `/{custom_field_id}`."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.constant_contact.gate import (
    CCError,
    cc_endpoint,
    paginate,
    query_limit,
    query_params,
    read_body,
)
from keygate.sandbox.constant_contact.store import ConstantContactState, CustomField, new_id

FIELD_TYPES = ("string", "date")
"""The custom field types the sandbox accepts (per PROVIDERS.md)."""


def custom_field_json(item: CustomField) -> dict[str, Any]:
    """Return a custom field as Constant Contact shows it."""
    return {
        "custom_field_id": item.custom_field_id,
        "label": item.label,
        "name": item.name,
        "type": item.type,
        "updated_at": item.updated_at,
        "created_at": item.created_at,
    }


def _invalid(message: str) -> CCError:
    return CCError(400, "contact_custom_fields.api.validation.error", message)


@cc_endpoint("contact_data")
async def list_custom_fields(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contact_custom_fields: `limit` 1-100 (default 50), cursor pages."""
    params, offset = query_params(request, "contact_custom_fields")
    limit = query_limit(params, 50, 100, "contact_custom_fields")
    items = list(sandbox.custom_fields.values())
    page, links = paginate("/v3/contact_custom_fields", params, items, offset, limit)
    body: dict[str, Any] = {"custom_fields": [custom_field_json(item) for item in page]}
    if links:
        body["_links"] = links
    return JSONResponse(body)


@cc_endpoint("contact_data")
async def create_custom_field(request: Request, sandbox: ConstantContactState) -> Response:
    """POST /v3/contact_custom_fields `{"label", "type"}`: 201, 409 on a duplicate label."""
    body = await read_body(request, "contact_custom_fields")
    label = body.get("label")
    if not isinstance(label, str) or not 1 <= len(label.strip()) <= 50:
        raise _invalid("label is required (1-50 characters).")
    field_type = body.get("type")
    if field_type not in FIELD_TYPES:
        raise _invalid(f"type must be one of {', '.join(FIELD_TYPES)}.")
    name = re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_")[:50] or "field"
    for other in sandbox.custom_fields.values():
        if other.name == name:
            message = f"A custom field named {name} already exists."
            raise CCError(409, "contact_custom_fields.api.conflict", message)
    now = sandbox.timestamp()
    item = CustomField(new_id(), label.strip(), name, field_type, now, now)
    sandbox.custom_fields[item.custom_field_id] = item
    return JSONResponse(custom_field_json(item), status_code=201)


def _find(sandbox: ConstantContactState, field_id: str) -> CustomField:
    item = sandbox.custom_fields.get(field_id)
    if item is None:
        message = f"Custom field {field_id} not found."
        raise CCError(404, "contact_custom_fields.api.not_found", message)
    return item


@cc_endpoint("contact_data")
async def get_custom_field(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contact_custom_fields/{custom_field_id}."""
    return JSONResponse(custom_field_json(_find(sandbox, request.path_params["custom_field_id"])))


@cc_endpoint("contact_data")
async def delete_custom_field(request: Request, sandbox: ConstantContactState) -> Response:
    """DELETE /v3/contact_custom_fields/{custom_field_id}: 204; contact values go too."""
    item = _find(sandbox, request.path_params["custom_field_id"])
    del sandbox.custom_fields[item.custom_field_id]
    for contact in sandbox.contacts.values():
        contact.custom_fields = [
            value
            for value in contact.custom_fields
            if value["custom_field_id"] != item.custom_field_id
        ]
    return Response(status_code=204)
