"""Constant Contact tags: `/v3/contact_tags` and `/v3/contact_tags/{tag_id}`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.constant_contact.activities import finished_activity
from keygate.sandbox.constant_contact.gate import (
    CCError,
    cc_endpoint,
    paginate,
    query_bool,
    query_limit,
    query_params,
    read_body,
)
from keygate.sandbox.constant_contact.store import ConstantContactState, Tag, new_id


def tag_json(sandbox: ConstantContactState, tag: Tag, with_count: bool) -> dict[str, Any]:
    """Return a tag as Constant Contact shows it (optionally with `contacts_count`)."""
    body: dict[str, Any] = {"tag_id": tag.tag_id, "name": tag.name}
    if with_count:
        live = sandbox.live_contacts()
        body["contacts_count"] = sum(1 for contact in live if tag.tag_id in contact.taggings)
    body.update(created_at=tag.created_at, updated_at=tag.updated_at, tag_source=tag.tag_source)
    return body


def _name(sandbox: ConstantContactState, body: dict[str, Any], own_id: str | None) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 255:
        raise CCError(
            400, "contact_tags.api.validation.error", "name is required (1-255 characters)."
        )
    for other in sandbox.tags.values():
        if other.name.lower() == name.strip().lower() and other.tag_id != own_id:
            raise CCError(409, "contact_tags.api.conflict", f"A tag named {name} already exists.")
    return name.strip()


def _find(sandbox: ConstantContactState, tag_id: str) -> Tag:
    tag = sandbox.tags.get(tag_id)
    if tag is None:
        raise CCError(404, "contact_tags.api.not_found", f"Tag {tag_id} not found.")
    return tag


@cc_endpoint("contact_data")
async def list_tags(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contact_tags: `limit` (default 50, at most 500), `include_count`, cursor pages."""
    params, offset = query_params(request, "contact_tags")
    limit = query_limit(params, 50, 500, "contact_tags")
    with_count = params.get("include_count", "false").lower() == "true"
    page, links = paginate("/v3/contact_tags", params, list(sandbox.tags.values()), offset, limit)
    body: dict[str, Any] = {"tags": [tag_json(sandbox, tag, with_count) for tag in page]}
    if links:
        body["_links"] = links
    return JSONResponse(body)


@cc_endpoint("contact_data")
async def create_tag(request: Request, sandbox: ConstantContactState) -> Response:
    """POST /v3/contact_tags: 201, 409 on a duplicate name."""
    body = await read_body(request, "contact_tags")
    name = _name(sandbox, body, None)
    source = body.get("tag_source", "")
    if not isinstance(source, str):
        raise CCError(400, "contact_tags.api.validation.error", "tag_source must be a string.")
    now = sandbox.timestamp()
    tag = Tag(new_id(), name, source, now, now)
    sandbox.tags[tag.tag_id] = tag
    return JSONResponse(tag_json(sandbox, tag, with_count=False), status_code=201)


@cc_endpoint("contact_data")
async def get_tag(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/contact_tags/{tag_id}."""
    tag = _find(sandbox, request.path_params["tag_id"])
    with_count = query_bool(request, "include_count", "contact_tags")
    return JSONResponse(tag_json(sandbox, tag, with_count))


@cc_endpoint("contact_data")
async def update_tag(request: Request, sandbox: ConstantContactState) -> Response:
    """PUT /v3/contact_tags/{tag_id}: rename."""
    tag = _find(sandbox, request.path_params["tag_id"])
    tag.name = _name(sandbox, await read_body(request, "contact_tags"), tag.tag_id)
    tag.updated_at = sandbox.timestamp()
    return JSONResponse(tag_json(sandbox, tag, with_count=False))


@cc_endpoint("contact_data")
async def delete_tag(request: Request, sandbox: ConstantContactState) -> Response:
    """DELETE /v3/contact_tags/{tag_id}: 202 with an activity; taggings go too."""
    tag = _find(sandbox, request.path_params["tag_id"])
    del sandbox.tags[tag.tag_id]
    for contact in sandbox.contacts.values():
        if tag.tag_id in contact.taggings:
            contact.taggings.remove(tag.tag_id)
    return JSONResponse(finished_activity(sandbox.timestamp(), with_status=True), status_code=202)
