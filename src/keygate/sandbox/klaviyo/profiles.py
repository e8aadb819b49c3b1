"""Klaviyo profiles: `GET|POST /api/profiles`, `GET|PATCH /api/profiles/{id}`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keygate.sandbox.klaviyo.filters import FilterField, parse_filter
from keygate.sandbox.klaviyo.gate import (
    BURST_STEADY_L,
    expect_type,
    klaviyo_endpoint,
    read_document,
)
from keygate.sandbox.klaviyo.jsonapi import (
    KlaviyoError,
    decode_cursor,
    invalid,
    jsonapi_response,
    not_found,
    page_links,
    page_size,
    resource_url,
)
from keygate.sandbox.klaviyo.store import KlaviyoState, Profile, new_profile_id
from keygate.sandbox.request_context import public_origin

IDENTIFIERS = ("email", "phone_number", "external_id")
_TEXT_FIELDS = ("first_name", "last_name", "organization", "locale", "title", "image")
_LOCATION_FIELDS = (
    "address1", "address2", "city", "country", "latitude",
    "longitude", "region", "zip", "timezone", "ip",
)  # fmt: skip
_WRITABLE = (*IDENTIFIERS, *_TEXT_FIELDS, "location", "properties")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_EQUALS_ANY = FilterField(frozenset({"equals", "any"}))
_BEFORE_AFTER = FilterField(frozenset({"greater-than", "less-than"}))
PROFILE_FILTERS = {
    "id": _EQUALS_ANY,
    "email": _EQUALS_ANY,
    "phone_number": _EQUALS_ANY,
    "external_id": _EQUALS_ANY,
    "created": _BEFORE_AFTER,
    "updated": _BEFORE_AFTER,
}
"""The profile fields `filter` may name, with their operators (from `x-klaviyo-filters`)."""

_SORTS = ("id", "email", "created", "updated")


def _sparse(attributes: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    if fields is None:
        return attributes
    kept: dict[str, Any] = {}
    for name in fields:
        top, _, sub = name.partition(".")
        if not sub:
            kept[top] = attributes.get(top)
        elif isinstance(attributes.get(top), dict):
            kept.setdefault(top, {})[sub] = attributes[top].get(sub)
    return kept


def profile_resource(
    profile: Profile,
    origin: str,
    fields: Sequence[str] | None = None,
    joined_at: str | None = None,
) -> dict[str, Any]:
    """Return a profile as a JSON:API resource object (optionally with sparse attributes).

    `joined_at` is set when the profile is shown as a list member (`joined_group_at`).
    """
    stored = profile.attributes
    attributes: dict[str, Any] = {name: stored.get(name) for name in (*IDENTIFIERS, *_TEXT_FIELDS)}
    location = stored.get("location") or {}
    attributes.update(
        created=profile.created,
        updated=profile.updated,
        last_event_date=None,
        location={name: location.get(name) for name in _LOCATION_FIELDS},
        properties=dict(stored.get("properties") or {}),
    )
    if joined_at is not None:
        attributes["joined_group_at"] = joined_at
    path = f"/api/profiles/{profile.id}"
    relationships = {
        name: {
            "links": {
                "self": resource_url(origin, f"{path}/relationships/{name}"),
                "related": resource_url(origin, f"{path}/{name}"),
            }
        }
        for name in ("lists", "segments")
    }
    return {
        "type": "profile",
        "id": profile.id,
        "attributes": _sparse(attributes, fields),
        "relationships": relationships,
        "links": {"self": resource_url(origin, path)},
    }


def requested_fields(request: Request) -> list[str] | None:
    """Read `fields[profile]` (comma separated), or None for every field."""
    raw = request.query_params.get("fields[profile]")
    if raw is None:
        return None
    allowed = {*IDENTIFIERS, *_TEXT_FIELDS, "created", "updated", "last_event_date"}
    allowed.add("joined_group_at")
    allowed |= {"location", "properties"} | {f"location.{name}" for name in _LOCATION_FIELDS}
    fields = [name.strip() for name in raw.split(",") if name.strip()]
    for name in fields:
        if name not in allowed and not name.startswith("properties."):
            detail = f"'{name}' is not a valid field for the resource 'profile'."
            raise invalid(detail, parameter="fields[profile]")
    return fields


def _sort_key(request: Request) -> tuple[str, bool]:
    raw = request.query_params.get("sort", "id")
    name = raw.removeprefix("-")
    if name not in _SORTS:
        raise invalid(f"'{raw}' is not a valid sort for profiles.", parameter="sort")
    return name, raw.startswith("-")


def profiles_page(
    request: Request,
    sandbox: KlaviyoState,
    candidates: list[Profile],
    joined: dict[str, str] | None = None,
) -> Response:
    """Filter, sort and paginate profiles into a JSON:API collection document."""
    predicate = parse_filter(request.query_params.get("filter"), PROFILE_FILTERS)
    fields = requested_fields(request)
    name, descending = _sort_key(request)
    size = page_size(request, default=20, maximum=100)
    cursor = request.query_params.get("page[cursor]")
    offset = decode_cursor(cursor) if cursor else 0

    def row(profile: Profile) -> dict[str, object]:
        return {"id": profile.id, "created": profile.created, "updated": profile.updated} | {
            key: profile.attributes.get(key) for key in IDENTIFIERS
        }

    matches = [profile for profile in candidates if predicate(row(profile))]
    matches.sort(key=lambda profile: str(row(profile).get(name) or ""), reverse=descending)
    origin = public_origin(request, sandbox)
    data = [
        profile_resource(p, origin, fields, joined.get(p.id) if joined is not None else None)
        for p in matches[offset : offset + size]
    ]
    links = page_links(request, origin, offset, size, len(matches))
    return jsonapi_response({"data": data, "links": links})


def _validated_attributes(attributes: object, *, creating: bool) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        raise invalid("'attributes' must be an object.", pointer="/data/attributes")
    for name, value in attributes.items():
        pointer = f"/data/attributes/{name}"
        if name not in _WRITABLE:
            raise invalid(
                f"'{name}' is not a valid field for the resource 'profile'.", pointer=pointer
            )
        if name in ("location", "properties"):
            if value is not None and not isinstance(value, dict):
                raise invalid(f"'{name}' must be an object.", pointer=pointer)
            unknown = set(value or {}) - set(_LOCATION_FIELDS) if name == "location" else set()
            if unknown:
                raise invalid(
                    f"'{sorted(unknown)[0]}' is not a valid location field.", pointer=pointer
                )
        elif value is not None and not isinstance(value, str):
            raise invalid(f"'{name}' must be a string.", pointer=pointer)
    if attributes.get("email") and not _EMAIL.match(attributes["email"]):
        raise invalid("Invalid email address.", pointer="/data/attributes/email")
    if attributes.get("phone_number") and not _PHONE.match(attributes["phone_number"]):
        detail = "Invalid phone number format (Example of a valid format: +12345678901)."
        raise invalid(detail, pointer="/data/attributes/phone_number")
    if creating and not any(attributes.get(name) for name in IDENTIFIERS):
        detail = "One of 'email', 'phone_number', or 'external_id' is required."
        raise invalid(detail, pointer="/data/attributes")
    return attributes


def _check_duplicates(
    sandbox: KlaviyoState, attributes: dict[str, Any], own_id: str | None
) -> None:
    for name in IDENTIFIERS:
        other = sandbox.profile_by_identifier(name, attributes.get(name))
        if other is not None and other.id != own_id:
            raise KlaviyoError(
                409,
                "duplicate_profile",
                "Conflict.",
                "A profile already exists with one of these identifiers.",
                {"pointer": f"/data/attributes/{name}"},
                {"duplicate_profile_id": other.id},
            )


@klaviyo_endpoint("profiles", BURST_STEADY_L, "profiles:read")
async def list_profiles(request: Request, sandbox: KlaviyoState) -> Response:
    """GET /api/profiles."""
    return profiles_page(request, sandbox, list(sandbox.profiles.values()))


@klaviyo_endpoint("profiles", BURST_STEADY_L, "profiles:write")
async def create_profile(request: Request, sandbox: KlaviyoState) -> Response:
    """POST /api/profiles: 201, or 409 `duplicate_profile` for a known identifier."""
    data = expect_type((await read_document(request))["data"], "profile")
    attributes = _validated_attributes(data.get("attributes"), creating=True)
    _check_duplicates(sandbox, attributes, None)
    now = sandbox.timestamp()
    profile = Profile(new_profile_id(), dict(attributes), now, now)
    sandbox.profiles[profile.id] = profile
    origin = public_origin(request, sandbox)
    body = {
        "data": profile_resource(profile, origin),
        "links": {"self": resource_url(origin, request.url.path)},
    }
    return jsonapi_response(body, status=201)


def _find(sandbox: KlaviyoState, profile_id: str) -> Profile:
    profile = sandbox.profiles.get(profile_id)
    if profile is None:
        raise not_found(f"A profile with id {profile_id} does not exist.")
    return profile


@klaviyo_endpoint("profiles", BURST_STEADY_L, "profiles:read")
async def get_profile(request: Request, sandbox: KlaviyoState) -> Response:
    """GET /api/profiles/{id}."""
    profile = _find(sandbox, request.path_params["id"])
    origin = public_origin(request, sandbox)
    resource = profile_resource(profile, origin, requested_fields(request))
    return jsonapi_response({"data": resource, "links": {"self": resource["links"]["self"]}})


@klaviyo_endpoint("profiles", BURST_STEADY_L, "profiles:write")
async def update_profile(request: Request, sandbox: KlaviyoState) -> Response:
    """PATCH /api/profiles/{id}: merge the given attributes (null clears a field)."""
    profile = _find(sandbox, request.path_params["id"])
    data = expect_type((await read_document(request))["data"], "profile")
    if data.get("id") != profile.id:
        detail = "The id in the body does not match the id in the URL."
        raise KlaviyoError(409, "conflict", "Conflict.", detail, {"pointer": "/data/id"})
    attributes = _validated_attributes(data.get("attributes", {}), creating=False)
    _check_duplicates(sandbox, attributes, profile.id)
    for name, value in attributes.items():
        if name in ("location", "properties") and value is not None:
            merged = dict(profile.attributes.get(name) or {})
            merged.update(value)
            profile.attributes[name] = merged
        else:
            profile.attributes[name] = value
    profile.updated = sandbox.timestamp()
    origin = public_origin(request, sandbox)
    resource = profile_resource(profile, origin)
    return jsonapi_response({"data": resource, "links": {"self": resource["links"]["self"]}})
