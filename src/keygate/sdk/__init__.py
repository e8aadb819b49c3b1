"""The Python SDK for callers of a Keygate: `Keygate` (sync) and `AsyncKeygate` (asyncio).

It needs only httpx, never the server's dependencies, and reads `KEYGATE_URL` and
`KEYGATE_API_KEY` when not given a URL and key. Errors are in `keygate.sdk.errors`.
"""

from keygate.sdk.async_client import AsyncKeygate
from keygate.sdk.client import Keygate
from keygate.sdk.errors import (
    ConnectionFailed,
    GatewayError,
    InvalidApiKey,
    KeygateError,
    KeygateUnreachable,
    NoActiveConnection,
    RateLimited,
    ReauthorizationRequired,
    UpstreamError,
    WaitTimeout,
)
from keygate.sdk.models import App, Connection, Pagination

__all__ = [
    "App",
    "AsyncKeygate",
    "Connection",
    "ConnectionFailed",
    "GatewayError",
    "InvalidApiKey",
    "Keygate",
    "KeygateError",
    "KeygateUnreachable",
    "NoActiveConnection",
    "Pagination",
    "RateLimited",
    "ReauthorizationRequired",
    "UpstreamError",
    "WaitTimeout",
]
