"""Serve every registered sandbox on uvicorn, for `keygate sandbox` and manual exploration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from keygate.sandbox.config import SandboxConfig
from keygate.sandbox.registry import SANDBOXES, sandbox_ports

ConfigFactory = Callable[[str, int], SandboxConfig]
"""Builds the config of one sandbox from (app name, port)."""


def default_config(app: str, port: int) -> SandboxConfig:
    """Return the default config, with `public_base_url` left to each request's origin."""
    return SandboxConfig()


async def serve_sandboxes_async(
    host: str, first_port: int, config_factory: ConfigFactory = default_config
) -> None:
    """Serve every sandbox (the n-th on `first_port + n`) until cancelled or interrupted."""
    import uvicorn  # a dev dependency today; only this entry point needs it

    ports = sandbox_ports(first_port)
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                spec.create(config_factory(spec.app, ports[spec.app]), None),
                host=host,
                port=ports[spec.app],
                log_level="warning",
            )
        )
        for spec in SANDBOXES
    ]
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        # Cancelled (a test, an embedding loop), uvicorn leaves its listening sockets open.
        for server in servers:
            for listener in server.servers:
                listener.close()


def serve_sandboxes(
    host: str, first_port: int, config_factory: ConfigFactory = default_config
) -> None:
    """Serve every sandbox on uvicorn (blocking)."""
    asyncio.run(serve_sandboxes_async(host, first_port, config_factory))
