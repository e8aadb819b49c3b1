"""Configuration of the provider sandboxes: one explicit object, no environment reads."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PRIVATE_KEY = "pk_sandbox_0123456789abcdef"
"""The Klaviyo private API key every fresh Klaviyo sandbox accepts."""

CLIENT_ID = "sandbox-client"
"""The OAuth client every sandbox has registered."""

CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - a well-known test credential
"""That client's secret."""


def _default_redirect_uris() -> list[str]:
    # Keygate's default public URL plus its callback, so `keygate sandbox` works out of the box.
    return [
        "http://127.0.0.1:8080/oauth/callback",
        "http://localhost:8080/oauth/callback",
    ]


@dataclass
class SandboxConfig:
    """Settings shared by both sandboxes; `None` means "the provider's documented default".

    `public_base_url` is the origin callers see (used for Klaviyo's absolute `links` and the
    device-flow verification URI); an empty string means "the origin of each request".
    `rotating_refresh_tokens=None` picks the provider default: Constant Contact rotates
    (single-use refresh tokens), Klaviyo returns the same refresh token (rotation unverified).
    `seed_data` starts the sandbox with its small demo data set instead of empty (`keygate
    sandbox`, `keygate serve --sandbox`); `/_sandbox/reset` empties it either way.
    """

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    client_name: str = "Keygate"
    redirect_uris: list[str] = field(default_factory=_default_redirect_uris)
    auto_approve: bool = False
    access_token_ttl: int | None = None
    rotating_refresh_tokens: bool | None = None
    refresh_token_idle_ttl: int | None = None
    code_ttl: int = 300
    device_code_ttl: int = 600
    device_poll_interval: int = 5
    rate_limit: bool = True
    public_base_url: str = ""
    private_keys: list[str] = field(default_factory=lambda: [DEFAULT_PRIVATE_KEY])
    token_delay: float = 2.0
    seed_data: bool = False

    def copy(self) -> SandboxConfig:
        """Return an independent copy (lists are not shared), so two sandboxes never alias."""
        return SandboxConfig(
            **{
                **self.__dict__,
                "redirect_uris": list(self.redirect_uris),
                "private_keys": list(self.private_keys),
            }
        )
