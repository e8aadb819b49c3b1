"""Klaviyo lists: `/api/lists`, `/api/lists/{id}`, memberships and member profiles."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keygate.sandbox.klaviyo.filters import FilterField, parse_filter
from keygate.sandbox.klaviyo.gate import (
    BURST_STEADY_L,
    BURST_STEADY_M,
    expect_type,
    klaviyo_endpoint,
    read_document,
)
from keygate.sandbox.klaviyo.jsonapi import (
    decode_cursor,
    invalid,
    jsonapi_response,
    not_found,
    page_links,
    page_size,
    resource_url,
)
from keygate.sandbox.klaviyo.profiles import profiles_page
from keygate.sandbox.klaviyo.store import KlaviyoState, ProfileList, new_list_id
from keygate.sandbox.request_context import public_origin

_OPT_IN = ("double_opt_in", "single_opt_in")
_EQUALS_ANY = FilterField(frozenset({"equals", "any"}))
_BEFORE_AFTER = FilterField(frozenset({"greater-than", "less-than"}))
LIST_FILTERS = {
    "id": _EQUALS_ANY,
    "name": _EQUALS_ANY,
    "created": _BEFORE_AFTER,
    "updated": _BEFORE_AFTER,
}
"""The list fields `filter` may name, with their operators."""

_SORTS = ("id", "name", "created", "updated")


def list_resource(item: ProfileList, origin: str) -> dict[str, Any]:
    """Return a list as a JSON:API resource object."""
    path = f"/api/lists/{item.id}"
    relationships = {
        name: {
            "links": {
                "self": resource_url(origin, f"{path}/relationships/{name}"),
                "related": resource_url(origin, f"{path}/{name}"),
            }
        }
        for name in ("profiles", "tags")
    }
    return {
        "type": "list",
        "id": item.id,
        "attributes": {
            "name": item.name,
            "created": item.created,
            "updated": item.updated,
            "opt_in_process": item.opt_in_process,
        },
        "relationships": relationships,
        "links": {"self": resource_url(origin, path)},
    }


def _single(
    request: Request, sandbox: KlaviyoState, item: ProfileList, status: int = 200
) -> Response:
    resource = list_resource(item, public_origin(request, sandbox))
    return jsonapi_response(
        {"data": resource, "links": {"self": resource["links"]["self"]}}, status
    )


def _find(sandbox: KlaviyoState, list_id: str) -> ProfileList:
    item = sandbox.lists.get(list_id)
    if item is None:
        raise not_found(f"A list with id {list_id} does not exist.")
    return item


def _attributes(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise invalid("'attributes' must be an object.", pointer="/data/attributes")
    for name, value in attributes.items():
        pointer = f"/data/attributes/{name}"
        if name == "name":
            if not isinstance(value, str) or not value.strip():
                raise invalid("'name' must be a non-empty string.", pointer=pointer)
        elif name == "opt_in_process":
            if value is not None and value not in _OPT_IN:
                raise invalid(
                    f"'opt_in_process' must be one of {', '.join(_OPT_IN)}.", pointer=pointer
                )
        else:
            raise invalid(
                f"'{name}' is not a valid field for the resource 'list'.", pointer=pointer
            )
    if creating and "name" not in attributes:
        raise invalid(
            "'name' is a required field for the resource 'list'.", pointer="/data/attributes/name"
        )
    return attributes


@klaviyo_endpoint("lists", BURST_STEADY_L, "lists:read")
async def list_lists(request: Request, sandbox: KlaviyoState) -> Response:
    """GET /api/lists (pages of at most 10)."""
    predicate = parse_filter(request.query_params.get("filter"), LIST_FILTERS)
    raw_sort = request.query_params.get("sort", "id")
    if raw_sort.removeprefix("-") not in _SORTS:
        raise invalid(f"'{raw_sort}' is not a valid sort for lists.", parameter="sort")
    size = page_size(request, default=10, maximum=10)
    cursor = request.query_params.get("page[cursor]")
    offset = decode_cursor(cursor) if cursor else 0

    def row(item: ProfileList) -> dict[str, object]:
        return {"id": item.id, "name": item.name, "created": item.created, "updated": item.updated}

    matches = [item for item in sandbox.lists.values() if predicate(row(item))]
    key = raw_sort.removeprefix("-")
    matches.sort(key=lambda item: str(row(item)[key]), reverse=raw_sort.startswith("-"))
    origin = public_origin(request, sandbox)
    data = [list_resource(item, origin) for item in matches[offset : offset + size]]
    return jsonapi_response(
        {"data": data, "links": page_links(request, origin, offset, size, len(matches))}
    )


@klaviyo_endpoint("lists_write", BURST_STEADY_M, "lists:write")
async def create_list(request: Request, sandbox: KlaviyoState) -> Response:
    """POST /api/lists: 201 with the new list."""
    data = expect_type((await read_document(request))["data"], "list")
    attributes = _attributes(data, creating=True)
    now = sandbox.timestamp()
    opt_in = attributes.get("opt_in_process") or "single_opt_in"
    item = ProfileList(new_list_id(), attributes["name"], opt_in, now, now)
    sandbox.lists[item.id] = item
    return _single(request, sandbox, item, status=201)


@klaviyo_endpoint("lists", BURST_STEADY_L, "lists:read")
async def get_list(request: Request, sandbox: KlaviyoState) -> Response:
    """GET /api/lists/{id}."""
    return _single(request, sandbox, _find(sandbox, request.path_params["id"]))


@klaviyo_endpoint("lists_write", BURST_STEADY_M, "lists:write")
async def update_list(request: Request, sandbox: KlaviyoState) -> Response:
    """PATCH /api/lists/{id}: rename or change the opt-in process."""
    item = _find(sandbox, request.path_params["id"])
    data = expect_type((await read_document(request))["data"], "list")
    if data.get("id") != item.id:
        raise invalid("The id in the body does not match the id in the URL.", pointer="/data/id")
    attributes = _attributes(data, creating=False)
    item.name = attributes.get("name", item.name)
    item.opt_in_process = attributes.get("opt_in_process") or item.opt_in_process
    item.updated = sandbox.timestamp()
    return _single(request, sandbox, item)


@klaviyo_endpoint("lists_write", BURST_STEADY_M, "lists:write")
async def delete_list(request: Request, sandbox: KlaviyoState) -> Response:
    """DELETE /api/lists/{id}: 204."""
    item = _find(sandbox, request.path_params["id"])
    del sandbox.lists[item.id]
    return jsonapi_response(None, status=204)


async def _profile_ids(request: Request, sandbox: KlaviyoState) -> list[str]:
    data = (await read_document(request))["data"]
    if not isinstance(data, list) or not data:
        raise invalid("'data' must be a non-empty array of profile identifiers.", pointer="/data")
    if len(data) > 1000:
        raise invalid("At most 1000 profiles may be sent per request.", pointer="/data")
    ids = []
    for index, entry in enumerate(data):
        entry = expect_type(entry, "profile", f"/data/{index}")
        profile_id = entry.get("id")
        if not isinstance(profile_id, str) or profile_id not in sandbox.profiles:
            raise not_found(f"A profile with id {profile_id} does not exist.")
        ids.append(profile_id)
    return ids


@klaviyo_endpoint("lists_write", BURST_STEADY_M, "lists:write")
async def add_members(request: Request, sandbox: KlaviyoState) -> Response:
    """POST /api/lists/{id}/relationships/profiles: 204."""
    item = _find(sandbox, request.path_params["id"])
    now = sandbox.timestamp()
    for profile_id in await _profile_ids(request, sandbox):
        item.members.setdefault(profile_id, now)
    return jsonapi_response(None, status=204)


@klaviyo_endpoint("lists_write", BURST_STEADY_M, "lists:write")
async def remove_members(request: Request, sandbox: KlaviyoState) -> Response:
    """DELETE /api/lists/{id}/relationships/profiles: 204."""
    item = _find(sandbox, request.path_params["id"])
    for profile_id in await _profile_ids(request, sandbox):
        item.members.pop(profile_id, None)
    return jsonapi_response(None, status=204)


@klaviyo_endpoint("lists", BURST_STEADY_L, "lists:read")
async def list_members(request: Request, sandbox: KlaviyoState) -> Response:
    """GET /api/lists/{id}/profiles (pages of 20, at most 100)."""
    item = _find(sandbox, request.path_params["id"])
    members = [sandbox.profiles[pid] for pid in item.members if pid in sandbox.profiles]
    return profiles_page(request, sandbox, members, joined=item.members)
