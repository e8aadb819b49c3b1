"""Validation of Constant Contact contact bodies (POST/PUT contacts, sign-up forms)."""

from __future__ import annotations

import re
from typing import Any

from keygate.sandbox.constant_contact.gate import CCError
from keygate.sandbox.constant_contact.store import ConstantContactState, Contact, new_id

PERMISSIONS = (
    "implicit",
    "explicit",
    "unsubscribed",
    "pending_confirmation",
    "temp_hold",
    "not_set",
)
SOURCES = ("Contact", "Account")
TEXT_FIELDS = {"first_name": 50, "last_name": 50, "job_title": 50, "company_name": 50}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_KINDS = ("home", "work", "mobile", "other")
_ADDRESS_KINDS = ("home", "work", "other")
_ADDRESS_FIELDS = {"street": 255, "city": 50, "state": 50, "postal_code": 50, "country": 50}


def invalid(message: str) -> CCError:
    """Build the 400 validation error contacts endpoints answer with."""
    return CCError(400, "contacts.api.validation.error", message)


def check_email(address: object) -> str:
    """Return a valid email address (at most 80 characters) or raise 400."""
    if not isinstance(address, str) or not address.strip():
        raise invalid("email_address.address is required.")
    if len(address) > 80 or not _EMAIL.match(address.strip()):
        raise invalid(f"{address} is not a valid email address.")
    return address.strip()


def _text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise invalid(f"{name} must be a string of at most {limit} characters.")
    return value


def _array(body: dict[str, Any], name: str, limit: int) -> list[Any]:
    value = body.get(name, [])
    if not isinstance(value, list) or len(value) > limit:
        raise invalid(f"{name} must be an array of at most {limit} items.")
    return value


def _known_ids(sandbox: ConstantContactState, values: list[Any], kind: str) -> list[str]:
    known: set[str] = set(sandbox.lists if kind == "list_memberships" else sandbox.tags)
    for value in values:
        if not isinstance(value, str) or value not in known:
            raise invalid(f"{kind}: {value} does not exist.")
    return list(dict.fromkeys(values))


def plain_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Validate names, job, birthday and anniversary; return only the fields present."""
    fields: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        if name in body:
            fields[name] = _text(body, name, limit)
    for name, top in (("birthday_month", 12), ("birthday_day", 31)):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or not 1 <= value <= top):
            raise invalid(f"{name} must be an integer between 1 and {top}.")
        if name in body:
            fields[name] = value
    if "anniversary" in body:
        fields["anniversary"] = _text(body, "anniversary", 10)
    return fields


def custom_field_values(sandbox: ConstantContactState, values: list[Any]) -> list[dict[str, Any]]:
    """Validate `[{custom_field_id, value}]` against the defined custom fields."""
    kept = []
    for item in values:
        field_id = item.get("custom_field_id") if isinstance(item, dict) else None
        if field_id not in sandbox.custom_fields:
            raise invalid(f"custom_fields: {field_id} does not exist.")
        value = item.get("value", "")
        if not isinstance(value, str) or len(value) > 255:
            raise invalid("custom_fields value must be a string of at most 255 characters.")
        kept.append({"custom_field_id": field_id, "value": value})
    return kept


def _phones(values: list[Any], now: str, source: str) -> list[dict[str, Any]]:
    phones = []
    for item in values:
        if not isinstance(item, dict) or not isinstance(item.get("phone_number"), str):
            raise invalid("phone_numbers items need a phone_number string.")
        if len(item["phone_number"]) > 25 or item.get("kind", "home") not in _PHONE_KINDS:
            raise invalid("phone_numbers: invalid phone_number or kind.")
        phones.append(
            {
                "phone_number_id": new_id(),
                "phone_number": item["phone_number"],
                "kind": item.get("kind", "home"),
                "created_at": now,
                "updated_at": now,
                "create_source": source,
                "update_source": source,
            }
        )
    return phones


def street_address(item: object, now: str) -> dict[str, Any]:
    """Validate one street address (`kind` required) and stamp it with an id."""
    if not isinstance(item, dict) or item.get("kind") not in _ADDRESS_KINDS:
        raise invalid("street address kind must be home, work or other.")
    address: dict[str, Any] = {"street_address_id": new_id(), "kind": item["kind"]}
    for name, limit in _ADDRESS_FIELDS.items():
        if name in item:
            address[name] = _text(item, name, limit)
    return address | {"created_at": now, "updated_at": now}


def _notes(values: list[Any], now: str) -> list[dict[str, Any]]:
    notes = []
    for item in values:
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, str) or len(content) > 2000:
            raise invalid("notes items need a content string of at most 2000 characters.")
        notes.append({"note_id": new_id(), "created_at": now, "content": content})
    return notes


def build_contact(
    sandbox: ConstantContactState, body: dict[str, Any], source_field: str, contact_id: str
) -> Contact:
    """Validate a POST (`create_source`) or PUT (`update_source`) body into a contact."""
    email = body.get("email_address")
    if not isinstance(email, dict):
        raise invalid("email_address is required.")
    address = check_email(email.get("address"))
    permission = email.get("permission_to_send", "implicit")
    if permission not in PERMISSIONS:
        raise invalid(f"permission_to_send must be one of {', '.join(PERMISSIONS)}.")
    source = body.get(source_field)
    if source not in SOURCES:
        raise invalid(f"{source_field} is required and must be Contact or Account.")
    now = sandbox.timestamp()
    return Contact(
        contact_id=contact_id,
        email=address,
        permission_to_send=permission,
        create_source=source,
        created_at=now,
        updated_at=now,
        fields=plain_fields(body),
        list_memberships=_known_ids(
            sandbox, _array(body, "list_memberships", 50), "list_memberships"
        ),
        taggings=_known_ids(sandbox, _array(body, "taggings", 50), "taggings"),
        custom_fields=custom_field_values(sandbox, _array(body, "custom_fields", 25)),
        phone_numbers=_phones(_array(body, "phone_numbers", 3), now, source),
        street_addresses=[street_address(a, now) for a in _array(body, "street_addresses", 3)],
        notes=_notes(_array(body, "notes", 150), now),
    )


def known_list_ids(sandbox: ConstantContactState, body: dict[str, Any]) -> list[str]:
    """Validate a sign-up form's `list_memberships` (1-50 existing list ids)."""
    values = _array(body, "list_memberships", 50)
    if not values:
        raise invalid("list_memberships is required and must name at least one list.")
    return _known_ids(sandbox, values, "list_memberships")
