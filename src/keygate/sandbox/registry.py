"""The registry of provider sandboxes, and the URLs that point a catalog app at its sandbox.

A sandbox serves its provider's paths on its own origin, so the URLs Keygate needs (API base,
authorize, token, revoke, device authorization) are the catalog's URLs with the origin swapped:
`https://authz.constantcontact.com/oauth2/default/v1/token` becomes
`http://127.0.0.1:9011/oauth2/default/v1/token`. Nothing else types them.

Adding a sandbox for a new app: a subpackage with a `create_<app>_app(config, clock)` factory
and one `SandboxSpec` line in `SANDBOXES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.applications import Starlette

from keygate.catalog.model import AppSpec, OAuth2Method
from keygate.sandbox.clock import SandboxClock
from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.constant_contact import create_constant_contact_app
from keygate.sandbox.klaviyo import create_klaviyo_app

AppFactory = Callable[[SandboxConfig, SandboxClock | None], Starlette]
"""Builds one sandbox app from its config (and, in tests, a controllable clock)."""

OAUTH_URL_FIELDS = ("authorize_url", "token_url", "revoke_url", "device_authorization_url")
"""The OAuth method's URL fields a sandbox takes over (those the catalog sets)."""


@dataclass(frozen=True)
class SandboxSpec:
    """One sandbox: the catalog app it stands in for and the factory of its Starlette app."""

    app: str
    create: AppFactory


SANDBOXES: tuple[SandboxSpec, ...] = (
    SandboxSpec("klaviyo", create_klaviyo_app),
    SandboxSpec("constant-contact", create_constant_contact_app),
)
"""Every sandbox, in port order: `keygate sandbox --port P` serves the n-th on P + n."""


def sandbox_for(app: str) -> SandboxSpec:
    """The sandbox standing in for `app`; KeyError if it has none."""
    for spec in SANDBOXES:
        if spec.app == app:
            return spec
    raise KeyError(f"no sandbox for app {app!r}")


def sandbox_ports(first_port: int) -> dict[str, int]:
    """The port of each sandbox when the first one listens on `first_port`."""
    return {spec.app: first_port + index for index, spec in enumerate(SANDBOXES)}


def _rebase(url: str, origin: str) -> str:
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{origin.rstrip('/')}{parts.path.rstrip('/')}{query}"


def sandbox_urls(spec: AppSpec, origin: str) -> dict[str, str]:
    """The app's base URL and OAuth URLs from the catalog, moved to the sandbox's `origin`.

    Keys are the override field names (`base_url`, `authorize_url`, …); a URL the catalog
    does not set (a provider without revocation, say) is absent.
    """
    urls = {"base_url": _rebase(str(spec.base_url), origin)}
    for method in spec.methods:
        if isinstance(method, OAuth2Method):
            for name in OAUTH_URL_FIELDS:
                value = getattr(method, name)
                if value is not None:
                    urls[name] = _rebase(str(value), origin)
    return urls
