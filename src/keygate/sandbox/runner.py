"""Serve both sandboxes on uvicorn, for `keygate sandbox` and manual exploration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.constant_contact import create_constant_contact_app
from keygate.sandbox.klaviyo import create_klaviyo_app

ConfigFactory = Callable[[str, int], SandboxConfig]
"""Builds the config of one sandbox from (provider name, port)."""


def default_config(provider: str, port: int) -> SandboxConfig:
    """Return the default config, with `public_base_url` left to each request's origin."""
    return SandboxConfig()


async def serve_sandboxes_async(
    host: str,
    klaviyo_port: int,
    constant_contact_port: int,
    config_factory: ConfigFactory = default_config,
) -> None:
    """Serve both sandboxes until cancelled or interrupted."""
    import uvicorn  # a dev dependency today; only this entry point needs it

    apps = [
        (create_klaviyo_app(config_factory("klaviyo", klaviyo_port)), klaviyo_port),
        (
            create_constant_contact_app(config_factory("constant-contact", constant_contact_port)),
            constant_contact_port,
        ),
    ]
    servers = [
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        for app, port in apps
    ]
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        # Cancelled (a test, an embedding loop), uvicorn leaves its listening sockets open.
        for server in servers:
            for listener in server.servers:
                listener.close()


def serve_sandboxes(
    host: str,
    klaviyo_port: int,
    constant_contact_port: int,
    config_factory: ConfigFactory = default_config,
) -> None:
    """Serve the Klaviyo and Constant Contact sandboxes on uvicorn (blocking)."""
    asyncio.run(serve_sandboxes_async(host, klaviyo_port, constant_contact_port, config_factory))
