"""Constant Contact account endpoints: summary, sender emails and user privileges."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keygate.sandbox.constant_contact.gate import CCError, cc_endpoint
from keygate.sandbox.constant_contact.store import ConstantContactState

_EXTRA_FIELDS = ("physical_address", "company_logo")
_PRIVILEGES = (
    "account:read",
    "account:update",
    "contacts:read",
    "contacts:write",
    "campaign:read",
    "campaign:write",
)


@cc_endpoint("account_read")
async def account_summary(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/account/summary (`extra_fields=physical_address,company_logo`)."""
    extra = [item for item in request.query_params.get("extra_fields", "").split(",") if item]
    unknown = [item for item in extra if item not in _EXTRA_FIELDS]
    if unknown:
        raise CCError(400, "account.api.bad.request", f"extra_fields: {unknown[0]} is not valid.")
    body: dict[str, Any] = {
        "contact_email": "owner@sandbox.example",
        "contact_phone": "6175551234",
        "country_code": "US",
        "encoded_account_id": "a07e1sandbox0001",
        "first_name": "Sandy",
        "last_name": "Box",
        "organization_name": "Keygate Sandbox Store",
        "organization_phone": "6175551234",
        "state_code": "MA",
        "time_zone_id": "US/Eastern",
        "website": "https://sandbox.example",
    }
    if "physical_address" in extra:
        body["physical_address"] = {
            "address_line1": "1 Loopback Way",
            "city": "Boston",
            "state_code": "MA",
            "postal_code": "02110",
            "country_code": "US",
        }
    if "company_logo" in extra:
        body["company_logo"] = {"url": "https://sandbox.example/logo.png", "internal_id": "1"}
    return JSONResponse(body)


@cc_endpoint("account_read")
async def account_emails(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/account/emails: a bare array of the account's sender addresses."""
    emails: list[dict[str, Any]] = [
        {
            "email_address": "owner@sandbox.example",
            "email_id": 1,
            "confirm_status": "CONFIRMED",
            "confirm_time": "2026-01-01T00:00:00Z",
            "confirm_source_type": "SITE_OWNER",
            "roles": ["CONTACT", "BILLING", "REPLY_TO", "JOURNALING"],
            "pending_roles": [],
        },
        {
            "email_address": "news@sandbox.example",
            "email_id": 2,
            "confirm_status": "UNCONFIRMED",
            "confirm_source_type": "SITE_OWNER",
            "roles": [],
            "pending_roles": ["REPLY_TO"],
        },
    ]
    wanted = {key: request.query_params.get(key) for key in ("confirm_status", "email_address")}
    role = request.query_params.get("role_code")
    kept = [
        email
        for email in emails
        if all(value is None or email[key] == value for key, value in wanted.items())
        and (role is None or role in email["roles"])
    ]
    return JSONResponse(kept)


@cc_endpoint("account_read")
async def user_privileges(request: Request, sandbox: ConstantContactState) -> Response:
    """GET /v3/account/user/privileges: a bare array of the user's privileges."""
    body = [
        {"privilege_id": index, "privilege_name": name} for index, name in enumerate(_PRIVILEGES, 1)
    ]
    return JSONResponse(body)
