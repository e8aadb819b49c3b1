"""In-memory grants, codes and tokens of a sandbox authorization server."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.oauth.protocol import OAuthError


@dataclass
class Grant:
    """One authorization (an "install"): what a person approved for a client."""

    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    created_at: float
    revoked: bool = False


@dataclass
class AuthorizationCode:
    """A single-use authorization code and the request it was issued for."""

    code: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    """An issued access token and the grant it speaks for."""

    token: str
    grant_id: str
    expires_at: float


@dataclass
class RefreshToken:
    """An issued refresh token; `spent` once a rotating refresh used it."""

    token: str
    grant_id: str
    last_used_at: float
    spent: bool = False


@dataclass
class TokenSet:
    """What a token endpoint hands out for one successful grant."""

    access_token: str
    expires_in: int
    scopes: tuple[str, ...]
    refresh_token: str | None = None

    def answer(self) -> dict[str, object]:
        """Return the RFC 6749 §5.1 JSON answer for this token set."""
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(self.scopes),
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


AccessTokenFactory = Callable[[Grant, float, float], str]
"""Builds an access token string from (grant, issued_at, expires_at)."""


def opaque_token(grant: Grant, issued_at: float, expires_at: float) -> str:
    """Return a random opaque token (the shape Klaviyo documents)."""
    return secrets.token_urlsafe(32)


@dataclass
class GrantStore:
    """Every grant, code and token one sandbox has issued, with their lifecycles."""

    clock: SandboxClock
    make_access_token: AccessTokenFactory = opaque_token
    grants: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget every grant, code and token."""
        self.grants.clear()
        self.codes.clear()
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    def issue_code(
        self,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        code_challenge: str | None,
        ttl: int,
    ) -> str:
        """Create a single-use authorization code valid for `ttl` seconds."""
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            code_challenge=code_challenge,
            expires_at=self.clock.now() + ttl,
        )
        return code

    def take_code(self, code: str, client_id: str, redirect_uri: str | None) -> AuthorizationCode:
        """Consume a code (single use) after checking client, expiry and redirect URI."""
        found = self.codes.get(code)
        if found is None or found.client_id != client_id:
            raise OAuthError("invalid_grant", "The authorization code is invalid.")
        if found.used:
            raise OAuthError("invalid_grant", "The authorization code has already been used.")
        found.used = True
        if self.clock.now() >= found.expires_at:
            raise OAuthError("invalid_grant", "The authorization code has expired.")
        if redirect_uri != found.redirect_uri:
            raise OAuthError("invalid_grant", "The redirect_uri does not match the authorize one.")
        return found

    def create_grant(self, client_id: str, scopes: tuple[str, ...]) -> Grant:
        """Record a new approved grant."""
        grant = Grant(secrets.token_hex(8), client_id, scopes, self.clock.now())
        self.grants[grant.grant_id] = grant
        return grant

    def mint(self, grant: Grant, access_ttl: int, with_refresh: bool) -> TokenSet:
        """Issue a fresh access token (and optionally a new refresh token) for a grant."""
        now = self.clock.now()
        token = self.make_access_token(grant, now, now + access_ttl)
        self.access_tokens[token] = AccessToken(token, grant.grant_id, now + access_ttl)
        refresh = None
        if with_refresh:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = RefreshToken(refresh, grant.grant_id, now)
        return TokenSet(token, access_ttl, grant.scopes, refresh)

    def refresh(
        self, refresh_token: str, client_id: str, access_ttl: int, rotating: bool, idle_ttl: int
    ) -> TokenSet:
        """Exchange a refresh token; rotating mode spends it and returns a new one."""
        now = self.clock.now()
        record = self.refresh_tokens.get(refresh_token)
        grant = self.grants.get(record.grant_id) if record else None
        if record is None or grant is None or grant.client_id != client_id:
            raise OAuthError("invalid_grant", "The refresh token is invalid.")
        if grant.revoked:
            raise OAuthError("invalid_grant", "The refresh token has been revoked.")
        if record.spent:
            raise OAuthError("invalid_grant", "The refresh token has already been used.")
        if now - record.last_used_at > idle_ttl:
            raise OAuthError("invalid_grant", "The refresh token has expired.")
        if not rotating:
            record.last_used_at = now
            tokens = self.mint(grant, access_ttl, with_refresh=False)
            tokens.refresh_token = record.token
            return tokens
        record.spent = True
        return self.mint(grant, access_ttl, with_refresh=True)

    def revoke_by_token(self, token: str) -> bool:
        """Revoke the grant behind an access or refresh token; False if unknown."""
        record: AccessToken | RefreshToken | None = self.refresh_tokens.get(token)
        if record is None:
            record = self.access_tokens.get(token)
        if record is None or record.grant_id not in self.grants:
            return False
        self.grants[record.grant_id].revoked = True
        return True

    def revoke_all(self) -> int:
        """Revoke every grant (all their tokens die); return how many were live."""
        live = [grant for grant in self.grants.values() if not grant.revoked]
        for grant in live:
            grant.revoked = True
        return len(live)

    def expire_access_tokens(self) -> None:
        """Make every access token expired now (refresh tokens stay valid)."""
        now = self.clock.now()
        for record in self.access_tokens.values():
            record.expires_at = min(record.expires_at, now)

    def authenticate(self, token: str) -> Grant | None:
        """Return the live grant behind a bearer access token, or None if unusable."""
        record = self.access_tokens.get(token)
        if record is None or self.clock.now() >= record.expires_at:
            return None
        grant = self.grants.get(record.grant_id)
        if grant is None or grant.revoked:
            return None
        return grant
