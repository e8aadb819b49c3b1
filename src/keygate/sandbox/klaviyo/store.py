"""Klaviyo sandbox state: the account, profiles, lists and memberships, in memory."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.oauth.grants import opaque_token
from keygate.sandbox.state import OAuthProfile, SandboxState

ACCOUNT_ID = "SbXkv1"
"""The one account every Klaviyo sandbox holds (OAuth grants and private keys alike)."""

KLAVIYO_OAUTH = OAuthProfile(
    provider="Klaviyo",
    authorize_path="/oauth/authorize",
    token_path="/oauth/token",  # noqa: S106 - a URL path, not a secret
    revoke_path="/oauth/revoke",
    pkce_required=True,
    default_access_ttl=3600,
    default_rotating=False,
    default_refresh_idle_ttl=90 * 86400,
    scope_pattern=re.compile(r"[a-z][a-z0-9-]*:(read|write)"),
    make_access_token=opaque_token,
    default_scopes=(
        "accounts:read",
        "profiles:read",
        "profiles:write",
        "lists:read",
        "lists:write",
    ),
)
"""Klaviyo's authorization server: PKCE mandatory, 1-hour tokens, revocation endpoint."""

# Crockford base32, the alphabet of Klaviyo's 26-character (ULID) profile ids.
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LIST_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def new_profile_id() -> str:
    """Return a fresh ULID-shaped profile id."""
    return "01" + "".join(secrets.choice(_ULID_ALPHABET) for _ in range(24))


def new_list_id() -> str:
    """Return a fresh six-character list id."""
    return "".join(secrets.choice(_LIST_ID_ALPHABET) for _ in range(6))


@dataclass
class Profile:
    """A Klaviyo profile: identifiers, personal fields, location and custom properties."""

    id: str
    attributes: dict[str, Any]
    created: str
    updated: str


@dataclass
class ProfileList:
    """A Klaviyo list and the ids of its member profiles (in insertion order)."""

    id: str
    name: str
    opt_in_process: str
    created: str
    updated: str
    members: dict[str, str] = field(default_factory=dict)
    """Member profile ids mapped to when they joined."""


class KlaviyoState(SandboxState):
    """Everything one Klaviyo sandbox holds: OAuth state plus the account's data."""

    def __init__(self, config: SandboxConfig, clock: SandboxClock | None = None) -> None:
        super().__init__(config, KLAVIYO_OAUTH, clock)
        self.private_keys: set[str] = set(config.private_keys)
        self.profiles: dict[str, Profile] = {}
        self.lists: dict[str, ProfileList] = {}

    def timestamp(self) -> str:
        """Return the current time the way Klaviyo writes it (`2026-02-07T07:41:05+00:00`)."""
        return self.clock.utcnow().replace(microsecond=0).isoformat()

    def reset_data(self) -> None:
        """Forget every profile and list."""
        self.profiles.clear()
        self.lists.clear()

    def profile_by_identifier(self, name: str, value: object) -> Profile | None:
        """Return the profile whose identifier attribute `name` equals `value`."""
        if value is None:
            return None
        for profile in self.profiles.values():
            if profile.attributes.get(name) == value:
                return profile
        return None
