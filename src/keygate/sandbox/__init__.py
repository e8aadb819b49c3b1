"""Provider-faithful stand-ins of Klaviyo and Constant Contact for tests, benchmarks and demos.

Each sandbox is a Starlette app with in-memory state (`app.state.sandbox`) serving the
provider's OAuth endpoints, its API and an admin API under `/_sandbox/`. One subpackage per
provider (`klaviyo/`, `constant_contact/`) on top of the shared authorization server (`oauth/`)
and plumbing (state, clock, rate limits, faults, admin API); `registry.py` lists them and
derives, from the catalog, the URLs that point an app at its sandbox.
"""

from keygate.sandbox.config import CLIENT_ID, CLIENT_SECRET, DEFAULT_PRIVATE_KEY, SandboxConfig
from keygate.sandbox.constant_contact import create_constant_contact_app
from keygate.sandbox.klaviyo import create_klaviyo_app
from keygate.sandbox.registry import SANDBOXES, SandboxSpec, sandbox_for, sandbox_urls

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DEFAULT_PRIVATE_KEY",
    "SANDBOXES",
    "SandboxConfig",
    "SandboxSpec",
    "create_constant_contact_app",
    "create_klaviyo_app",
    "sandbox_for",
    "sandbox_urls",
]
