"""The state object every sandbox app exposes as `app.state.sandbox`."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.faults import FaultSwitches
from keygate.sandbox.oauth.device_grants import DeviceStore
from keygate.sandbox.oauth.grants import AccessTokenFactory, Grant, GrantStore, TokenSet
from keygate.sandbox.ratelimit import FixedWindowLimiter


@dataclass(frozen=True)
class OAuthProfile:
    """How one provider's authorization server behaves (paths, defaults, quirks)."""

    provider: str
    authorize_path: str
    token_path: str
    pkce_required: bool
    default_access_ttl: int
    default_rotating: bool
    default_refresh_idle_ttl: int
    scope_pattern: re.Pattern[str]
    make_access_token: AccessTokenFactory
    default_scopes: tuple[str, ...]
    revoke_path: str | None = None
    device_authorize_path: str | None = None
    device_verify_path: str | None = None
    refresh_scope: str | None = None


@dataclass
class SandboxStats:
    """Counters tests read to see what a client did."""

    token_requests: Counter[str] = field(default_factory=Counter)
    revoke_calls: int = 0
    api_calls: int = 0
    authorize_calls: int = 0
    device_authorize_calls: int = 0
    throttled_calls: int = 0

    def as_dict(self) -> dict[str, object]:
        """Return the counters as JSON-ready data."""
        return {
            "token_requests": dict(self.token_requests),
            "token_requests_total": sum(self.token_requests.values()),
            "revoke_calls": self.revoke_calls,
            "api_calls": self.api_calls,
            "authorize_calls": self.authorize_calls,
            "device_authorize_calls": self.device_authorize_calls,
            "throttled_calls": self.throttled_calls,
        }


@dataclass
class ConsentRequest:
    """An authorize request waiting for the person's Approve or Deny."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str | None
    expires_at: float


class SandboxState:
    """Config, clock, counters, fault switches, grants and rate windows of one sandbox."""

    def __init__(
        self, config: SandboxConfig, profile: OAuthProfile, clock: SandboxClock | None = None
    ) -> None:
        self.config = config
        self.profile = profile
        self.clock = clock or SandboxClock()
        self.stats = SandboxStats()
        self.faults = FaultSwitches(token_delay=config.token_delay)
        self.grants = GrantStore(self.clock, profile.make_access_token)
        self.devices = DeviceStore(self.clock)
        self.limiter = FixedWindowLimiter(self.clock)
        self.consents: dict[str, ConsentRequest] = {}

    @property
    def access_ttl(self) -> int:
        """Access token lifetime in seconds (configured or the provider's default)."""
        ttl = self.config.access_token_ttl
        return self.profile.default_access_ttl if ttl is None else ttl

    @property
    def rotating(self) -> bool:
        """Whether refresh tokens are single use (configured or the provider's default)."""
        rotating = self.config.rotating_refresh_tokens
        return self.profile.default_rotating if rotating is None else rotating

    @property
    def refresh_idle_ttl(self) -> int:
        """Seconds a refresh token may stay unused before it dies."""
        ttl = self.config.refresh_token_idle_ttl
        return self.profile.default_refresh_idle_ttl if ttl is None else ttl

    def gets_refresh_token(self, scopes: tuple[str, ...]) -> bool:
        """Whether a grant with these scopes receives a refresh token."""
        needed = self.profile.refresh_scope
        return needed is None or needed in scopes

    def mint_direct(self, scopes: tuple[str, ...] | None = None) -> TokenSet:
        """Approve a grant without the browser dance and issue its tokens (admin API)."""
        chosen = scopes or self.profile.default_scopes
        grant = self.grants.create_grant(self.config.client_id, chosen)
        return self.grants.mint(grant, self.access_ttl, self.gets_refresh_token(chosen))

    def bearer_grant(self, authorization: str | None) -> Grant | None:
        """Return the live grant behind an `Authorization: Bearer` header, if any."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.grants.authenticate(token.strip())

    def reset_data(self) -> None:
        """Clear the provider's API data (subclasses own the data)."""

    def reset(self, tokens: bool = False) -> None:
        """Clear API data, counters, faults and rate windows; grants too when `tokens`."""
        self.reset_data()
        self.stats = SandboxStats()
        self.faults = FaultSwitches(token_delay=self.config.token_delay)
        self.limiter.clear()
        if tokens:
            self.grants.clear()
            self.devices.clear()
            self.consents.clear()
