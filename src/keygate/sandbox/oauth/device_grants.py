"""In-memory RFC 8628 device authorizations (Constant Contact's device flow)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.oauth.protocol import OAuthError

# RFC 8628 §6.1: a short code without vowels or look-alikes is easy to type and never a word.
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


class DeviceStatus(StrEnum):
    """Where a device authorization stands."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    REDEEMED = "redeemed"


@dataclass
class DeviceAuthorization:
    """One device authorization request and the person's decision."""

    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    status: DeviceStatus = DeviceStatus.PENDING


@dataclass
class DeviceStore:
    """Device authorizations by device code, with a user-code index."""

    clock: SandboxClock
    by_device_code: dict[str, DeviceAuthorization] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget every device authorization."""
        self.by_device_code.clear()

    def start(self, client_id: str, scopes: tuple[str, ...], ttl: int) -> DeviceAuthorization:
        """Create a pending device authorization valid for `ttl` seconds."""
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
        record = DeviceAuthorization(
            device_code=secrets.token_urlsafe(32),
            user_code=user_code,
            client_id=client_id,
            scopes=scopes,
            expires_at=self.clock.now() + ttl,
        )
        self.by_device_code[record.device_code] = record
        return record

    def find_user_code(self, user_code: str) -> DeviceAuthorization | None:
        """Return the live pending authorization for a user code (dashes/case ignored)."""
        wanted = user_code.replace("-", "").strip().upper()
        for record in self.by_device_code.values():
            live = self.clock.now() < record.expires_at
            if record.user_code == wanted and live and record.status == DeviceStatus.PENDING:
                return record
        return None

    def poll(self, device_code: str, client_id: str) -> DeviceAuthorization:
        """Return an approved authorization (marking it redeemed) or raise the RFC 8628 error."""
        record = self.by_device_code.get(device_code)
        if record is None or record.client_id != client_id:
            raise OAuthError("invalid_grant", "The device code is invalid.")
        if record.status == DeviceStatus.REDEEMED:
            raise OAuthError("invalid_grant", "The device code has already been used.")
        if self.clock.now() >= record.expires_at:
            raise OAuthError("expired_token", "The device code has expired.")
        if record.status == DeviceStatus.DENIED:
            raise OAuthError("access_denied", "The user denied the request.")
        if record.status == DeviceStatus.PENDING:
            raise OAuthError("authorization_pending", "The user has not yet approved the request.")
        record.status = DeviceStatus.REDEEMED
        return record
