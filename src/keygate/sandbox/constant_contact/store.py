"""Constant Contact sandbox state: the account, contacts, lists, tags and custom fields."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.oauth.grants import Grant
from keygate.sandbox.state import OAuthProfile, SandboxState

# Signs the sandbox's JWT-shaped tokens; nothing verifies the signature, it only looks real.
_SIGNING_KEY = secrets.token_bytes(32)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_access_token(grant: Grant, issued_at: float, expires_at: float) -> str:
    """Return a JWT-shaped access token (header.payload.signature), as Okta issues them."""
    header = {"kid": "sandbox", "alg": "HS256", "typ": "JWT"}
    payload = {
        "ver": 1,
        "jti": "AT." + secrets.token_urlsafe(16),
        "iss": "https://identity.constantcontact.com/oauth2/default",
        "aud": "https://api.cc.email/v3",
        "iat": int(issued_at),
        "exp": int(expires_at),
        "cid": grant.client_id,
        "scp": list(grant.scopes),
        "sub": "owner@sandbox.example",
        "grant": grant.grant_id,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = hmac.new(_SIGNING_KEY, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


CONSTANT_CONTACT_OAUTH = OAuthProfile(
    provider="Constant Contact",
    authorize_path="/oauth2/default/v1/authorize",
    token_path="/oauth2/default/v1/token",  # noqa: S106 - a URL path, not a secret
    pkce_required=False,
    default_access_ttl=86400,
    default_rotating=True,
    default_refresh_idle_ttl=180 * 86400,
    scope_pattern=re.compile(
        r"account_read|account_update|contact_data|campaign_data|offline_access"
    ),
    make_access_token=jwt_access_token,
    default_scopes=("account_read", "account_update", "contact_data", "offline_access"),
    device_authorize_path="/oauth2/default/v1/device/authorize",
    device_verify_path="/oauth2/default/v1/device",
    refresh_scope="offline_access",
)
"""Constant Contact's (Okta) authorization server: optional PKCE, device flow, 24-hour JWTs."""


def new_id() -> str:
    """Return a fresh UUID string (Constant Contact ids are UUIDs)."""
    return str(uuid.uuid4())


@dataclass
class Contact:
    """A contact; `fields` holds the plain optional properties (names, job, dates)."""

    contact_id: str
    email: str
    permission_to_send: str
    create_source: str
    created_at: str
    updated_at: str
    update_source: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    list_memberships: list[str] = field(default_factory=list)
    taggings: list[str] = field(default_factory=list)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    phone_numbers: list[dict[str, Any]] = field(default_factory=list)
    street_addresses: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    deleted_at: str | None = None

    @property
    def status(self) -> str:
        """The contact status the `status` filter matches on."""
        if self.deleted_at is not None:
            return "deleted"
        if self.permission_to_send in ("implicit", "explicit"):
            return "active"
        return self.permission_to_send


@dataclass
class ContactList:
    """A contact list."""

    list_id: str
    name: str
    description: str
    favorite: bool
    created_at: str
    updated_at: str


@dataclass
class Tag:
    """A contact tag."""

    tag_id: str
    name: str
    tag_source: str
    created_at: str
    updated_at: str


@dataclass
class CustomField:
    """A contact custom field definition."""

    custom_field_id: str
    label: str
    name: str
    type: str
    created_at: str
    updated_at: str


class ConstantContactState(SandboxState):
    """Everything one Constant Contact sandbox holds: OAuth state plus the account's data."""

    def __init__(self, config: SandboxConfig, clock: SandboxClock | None = None) -> None:
        super().__init__(config, CONSTANT_CONTACT_OAUTH, clock)
        self.contacts: dict[str, Contact] = {}
        self.lists: dict[str, ContactList] = {}
        self.tags: dict[str, Tag] = {}
        self.custom_fields: dict[str, CustomField] = {}

    def timestamp(self) -> str:
        """Return the current time as Constant Contact writes it (`2026-02-07T07:41:05Z`)."""
        return self.clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")

    def reset_data(self) -> None:
        """Forget every contact, list, tag and custom field."""
        self.contacts.clear()
        self.lists.clear()
        self.tags.clear()
        self.custom_fields.clear()

    def live_contacts(self) -> list[Contact]:
        """Return contacts that are not deleted, oldest first."""
        return [contact for contact in self.contacts.values() if contact.deleted_at is None]

    def contact_by_email(self, email: str) -> Contact | None:
        """Return the live contact with this email address (case-insensitive)."""
        wanted = email.strip().lower()
        for contact in self.live_contacts():
            if contact.email.lower() == wanted:
                return contact
        return None
