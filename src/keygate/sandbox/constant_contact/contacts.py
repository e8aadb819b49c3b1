"""Constant Contact contacts: `/v3/contacts`, `/{contact_id}`, `sign_up_form`, `counts`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.constant_contact.contact_input import (
    build_contact,
    check_email,
    custom_field_values,
    known_list_ids,
    plain_fields,
    street_address,
)
from keygate.sandbox.constant_contact.gate import (
    CCError,
    cc_endpoint,
    paginate,
    query_limit,
    query_params,
    read_body,
)
from keygate.sandbox.constant_contact.store import ConstantContactState, Contact, new_id

INCLUDES = (
    "custom_fields",
    "list_memberships",
    "phone_numbers",
    "street_addresses",
    "taggings",
    "notes",
)
STATUSES = (
    "all",
    "active",
    "deleted",
    "not_set",
    "pending_confirmation",
    "temp_hold",
    "unsubscribed",
)
_DATE_FILTERS = {
    "updated_after": ("updated_at", 1),
    "updated_before": ("updated_at", -1),
    "created_after": ("created_at", 1),
    "created_before": ("created_at", -1),
}


def _bad_request(message: str) -> CCError:
    return CCError(400, "contacts.api.bad.request", message)


def _csv(params: dict[str, str], name: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    values = [item.strip() for item in params.get(name, "").split(",") if item.strip()]
    wrong = [value for value in values if allowed is not None and value not in allowed]
    if wrong:
        raise _bad_request(f"{name}: {wrong[0]} is not one of {', '.join(allowed or ())}.")
    return values


def contact_json(contact: Contact, include: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a contact as Constant Contact shows it, with the requested sub-resources."""
    email: dict[str, Any] = {
        "address": contact.email,
        "permission_to_send": contact.permission_to_send,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        "opt_in_source": contact.create_source,
        "opt_in_date": contact.created_at,
        "confirm_status": "off",
    }
    body: dict[str, Any] = {"contact_id": contact.contact_id, "email_address": email}
    body.update({key: value for key, value in contact.fields.items() if value is not None})
    body["create_source"] = contact.create_source
    if contact.update_source:
        body["update_source"] = contact.update_source
    body["created_at"] = contact.created_at
    body["updated_at"] = contact.updated_at
    if contact.deleted_at:
        body["deleted_at"] = contact.deleted_at[:10]
    for name in include:
        body[name] = list(getattr(contact, name))
    return body


def _parse_when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad_request(f"{value} is not an ISO 8601 date or date-time.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _matches(contact: Contact, params: dict[str, str], statuses: list[str]) -> bool:
    if not statuses and contact.status == "deleted":
        return False  # Deleted contacts only show up when asked for by status.
    if statuses and "all" not in statuses and contact.status not in statuses:
        return False
    email = params.get("email")
    if email and contact.email.lower() != email.strip().lower():
        return False
    lists = _csv(params, "lists")
    if lists and not set(lists) & set(contact.list_memberships):
        return False
    tags = _csv(params, "tags")
    if tags and not set(tags) & set(contact.taggings):
        return False
    if params.get("segment_id"):
        return False  # The sandbox has no segments: a segment filter matches nobody.
    for name, (attribute, direction) in _DATE_FILTERS.items():
        if name in params:
            stamp = _parse_when(getattr(contact, attribute))
            bound = _parse_when(params[name])
            if (stamp - bound).total_seconds() * direction <= 0:
                return False
    return True


@cc_endpoint("contact_data")
async def list_contacts(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contacts: filters, `include`, `include_count`, cursor pages."""
    params, offset = query_params(request, "contacts")
    limit = query_limit(params, 50, 500, "contacts")
    statuses = _csv(params, "status", STATUSES)
    include = _csv(params, "include", INCLUDES)
    if len(_csv(params, "lists")) > 25 or len(_csv(params, "tags")) > 50:
        raise _bad_request("Too many lists (max 25) or tags (max 50).")
    matches = [c for c in sandbox.contacts.values() if _matches(c, params, statuses)]
    page, links = paginate("/v3/contacts", params, matches, offset, limit)
    body: dict[str, Any] = {"contacts": [contact_json(c, include) for c in page]}
    if params.get("include_count", "false").lower() == "true":
        body["contacts_count"] = len(matches)
    if links:
        body["_links"] = links
    return JSONResponse(body)


@cc_endpoint("contact_data")
async def create_contact(request: Request, sandbox: ConstantContactState) -> Response:
    """POST /v3/contacts: 201, 409 when the email address is taken."""
    body = await read_body(request, "contacts")
    contact = build_contact(sandbox, body, "create_source", new_id())
    if sandbox.contact_by_email(contact.email) is not None:
        raise CCError(409, "contacts.api.conflict", f"Email {contact.email} already exists.")
    sandbox.contacts[contact.contact_id] = contact
    return JSONResponse(contact_json(contact, INCLUDES), status_code=201)


def _find(sandbox: ConstantContactState, contact_id: str) -> Contact:
    contact = sandbox.contacts.get(contact_id)
    if contact is None or contact.deleted_at is not None:
        raise CCError(404, "contacts.api.not_found", f"Contact {contact_id} not found.")
    return contact


@cc_endpoint("contact_data")
async def get_contact(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contacts/{contact_id}."""
    contact = _find(sandbox, request.path_params["contact_id"])
    include = _csv(dict(request.query_params), "include", INCLUDES)
    return JSONResponse(contact_json(contact, include))


@cc_endpoint("contact_data")
async def update_contact(request: Request, sandbox: ConstantContactState) -> Response:
    """PUT /v3/contacts/{contact_id}: full replacement; `update_source` is required."""
    existing = _find(sandbox, request.path_params["contact_id"])
    body = await read_body(request, "contacts")
    replacement = build_contact(sandbox, body, "update_source", existing.contact_id)
    other = sandbox.contact_by_email(replacement.email)
    if other is not None and other.contact_id != existing.contact_id:
        raise CCError(409, "contacts.api.conflict", f"Email {replacement.email} already exists.")
    replacement.update_source = replacement.create_source
    replacement.create_source = existing.create_source
    replacement.created_at = existing.created_at
    sandbox.contacts[existing.contact_id] = replacement
    return JSONResponse(contact_json(replacement, INCLUDES))


@cc_endpoint("contact_data")
async def delete_contact(request: Request, sandbox: ConstantContactState) -> Response:
    """DELETE /v3/contacts/{contact_id}: 204; the contact becomes `deleted`."""
    contact = _find(sandbox, request.path_params["contact_id"])
    contact.deleted_at = sandbox.timestamp()
    contact.updated_at = contact.deleted_at
    return Response(status_code=204)


@cc_endpoint("contact_data")
async def sign_up_form(request: Request, sandbox: ConstantContactState) -> Response:
    """POST /v3/contacts/sign_up_form: create (201) or update (200) by email address."""
    body = await read_body(request, "contacts")
    email = check_email(body.get("email_address"))
    list_ids = known_list_ids(sandbox, body)
    fields = plain_fields(body)
    custom = body.get("custom_fields", [])
    values = custom_field_values(sandbox, custom if isinstance(custom, list) else [None])
    now = sandbox.timestamp()
    contact = sandbox.contact_by_email(email)
    created = contact is None
    if contact is None:
        contact = Contact(new_id(), email, "implicit", "Contact", now, now)
        sandbox.contacts[contact.contact_id] = contact
    contact.fields.update(fields)
    contact.list_memberships = list(dict.fromkeys([*contact.list_memberships, *list_ids]))
    known = {item["custom_field_id"] for item in values}
    contact.custom_fields = [c for c in contact.custom_fields if c["custom_field_id"] not in known]
    contact.custom_fields += values
    if "phone_number" in body:
        phone = body["phone_number"]
        if not isinstance(phone, str) or len(phone) > 25:
            raise CCError(400, "contacts.api.validation.error", "Invalid phone_number.")
        contact.phone_numbers = [
            {"phone_number_id": new_id(), "phone_number": phone, "kind": "home"}
        ]
    if "street_address" in body:
        contact.street_addresses = [street_address(body["street_address"], now)]
    contact.updated_at = now
    contact.update_source = None if created else "Contact"
    action = "created" if created else "updated"
    return JSONResponse(
        {"contact_id": contact.contact_id, "action": action}, 201 if created else 200
    )


@cc_endpoint("contact_data")
async def contact_counts(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contacts/counts: live contacts by permission, plus new subscribers (30 days)."""
    live = sandbox.live_contacts()
    cutoff = sandbox.clock.utcnow() - timedelta(days=30)

    def count(permission: str) -> int:
        return sum(1 for contact in live if contact.permission_to_send == permission)

    recent = sum(1 for contact in live if _parse_when(contact.created_at) >= cutoff)
    return JSONResponse(
        {
            "total": len(live),
            "explicit": count("explicit"),
            "implicit": count("implicit"),
            "pending": count("pending_confirmation"),
            "unsubscribed": count("unsubscribed"),
            "new_subscriber": recent,
        }
    )
