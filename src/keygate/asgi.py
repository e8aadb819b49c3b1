"""The server's entry point: the one place a serving process reads its settings from the env."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from keygate.app import KeygateApp, Scope, create_app
from keygate.settings import Settings


def configure_logging(settings: Settings) -> None:
    """One plain line per record on stderr; secrets never reach a log call."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s pid=%(process)d %(name)s %(message)s",
    )


def app_from_environment() -> KeygateApp:
    """Build the app from KEYGATE_* variables (for any ASGI server's factory option)."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)


def granian_target() -> Callable[[Scope, Any, Any], Awaitable[None]]:
    """What `keygate serve` workers give granian: the app's dispatch (see `KeygateApp.dispatch`)."""
    return app_from_environment().dispatch
