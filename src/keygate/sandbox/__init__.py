"""Provider-faithful stand-ins of Klaviyo and Constant Contact for tests, benchmarks and demos.

Each sandbox is a Starlette app with in-memory state (`app.state.sandbox`) serving the
provider's OAuth endpoints, its API and an admin API under `/_sandbox/`.
"""

from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.constant_contact import create_constant_contact_app
from keygate.sandbox.klaviyo import create_klaviyo_app

__all__ = ["SandboxConfig", "create_constant_contact_app", "create_klaviyo_app"]
