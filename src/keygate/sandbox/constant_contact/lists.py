"""Constant Contact contact lists: `/v3/contact_lists` and `/v3/contact_lists/{list_id}`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.constant_contact.activities import finished_activity
from keygate.sandbox.constant_contact.gate import (
    CCError,
    cc_endpoint,
    paginate,
    query_limit,
    query_params,
    read_body,
)
from keygate.sandbox.constant_contact.store import ConstantContactState, ContactList, new_id

_MEMBERSHIP_COUNTS = ("all", "active")


def _membership_count(sandbox: ConstantContactState, list_id: str, which: str) -> int:
    contacts = sandbox.live_contacts()
    if which == "active":
        contacts = [contact for contact in contacts if contact.status == "active"]
    return sum(1 for contact in contacts if list_id in contact.list_memberships)


def list_json(item: ContactList) -> dict[str, Any]:
    """Return a list as Constant Contact shows it."""
    return {
        "list_id": item.list_id,
        "name": item.name,
        "description": item.description,
        "favorite": item.favorite,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def _with_count(
    sandbox: ConstantContactState, item: ContactList, which: str | None
) -> dict[str, Any]:
    body = list_json(item)
    if which is not None:
        if which not in _MEMBERSHIP_COUNTS:
            raise CCError(
                400,
                "contact_lists.api.bad.request",
                "include_membership_count must be all or active.",
            )
        body["membership_count"] = _membership_count(sandbox, item.list_id, which)
    return body


def _validated(
    sandbox: ConstantContactState, body: dict[str, Any], own_id: str | None
) -> dict[str, Any]:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise CCError(
            400, "contact_lists.api.validation.error", "name is required (at most 255 characters)."
        )
    if not isinstance(body.get("favorite", False), bool):
        raise CCError(400, "contact_lists.api.validation.error", "favorite must be a boolean.")
    if not isinstance(body.get("description", ""), str):
        raise CCError(400, "contact_lists.api.validation.error", "description must be a string.")
    for other in sandbox.lists.values():
        if other.name.lower() == name.strip().lower() and other.list_id != own_id:
            raise CCError(409, "contact_lists.api.conflict", f"A list named {name} already exists.")
    return body


def _find(sandbox: ConstantContactState, list_id: str) -> ContactList:
    item = sandbox.lists.get(list_id)
    if item is None:
        raise CCError(404, "contact_lists.api.not_found", f"List {list_id} not found.")
    return item


@cc_endpoint("contact_data")
async def list_lists(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contact_lists: `limit` up to 1000, `include_count`, `include_membership_count`."""
    params, offset = query_params(request, "contact_lists")
    limit = query_limit(params, 50, 1000, "contact_lists")
    items = list(sandbox.lists.values())
    if params.get("name"):
        items = [item for item in items if item.name == params["name"]]
    page, links = paginate("/v3/contact_lists", params, items, offset, limit)
    which = params.get("include_membership_count")
    body: dict[str, Any] = {"lists": [_with_count(sandbox, item, which) for item in page]}
    if params.get("include_count", "false").lower() == "true":
        body["lists_count"] = len(items)
    if links:
        body["_links"] = links
    return JSONResponse(body)


@cc_endpoint("contact_data")
async def create_list(request: Request, sandbox: ConstantContactState) -> Response:
    """POST /v3/contact_lists: 201, 409 on a duplicate name."""
    body = _validated(sandbox, await read_body(request, "contact_lists"), None)
    now = sandbox.timestamp()
    item = ContactList(
        new_id(),
        body["name"].strip(),
        body.get("description", ""),
        body.get("favorite", False),
        now,
        now,
    )
    sandbox.lists[item.list_id] = item
    return JSONResponse(list_json(item), status_code=201)


@cc_endpoint("contact_data")
async def get_list(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contact_lists/{list_id}."""
    item = _find(sandbox, request.path_params["list_id"])
    which = request.query_params.get("include_membership_count")
    return JSONResponse(_with_count(sandbox, item, which))


@cc_endpoint("contact_data")
async def update_list(request: Request, sandbox: ConstantContactState) -> Response:
    """PUT /v3/contact_lists/{list_id}: replace name, description and favorite."""
    item = _find(sandbox, request.path_params["list_id"])
    body = _validated(sandbox, await read_body(request, "contact_lists"), item.list_id)
    item.name = body["name"].strip()
    item.description = body.get("description", "")
    item.favorite = body.get("favorite", False)
    item.updated_at = sandbox.timestamp()
    return JSONResponse(list_json(item))


@cc_endpoint("contact_data")
async def delete_list(request: Request, sandbox: ConstantContactState) -> Response:
    """DELETE /v3/contact_lists/{list_id}: 202 with an activity; memberships go too."""
    item = _find(sandbox, request.path_params["list_id"])
    del sandbox.lists[item.list_id]
    for contact in sandbox.contacts.values():
        if item.list_id in contact.list_memberships:
            contact.list_memberships.remove(item.list_id)
    return JSONResponse(finished_activity(sandbox.timestamp(), with_status=False), status_code=202)
