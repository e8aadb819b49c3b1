"""The server's entry point: the one place a serving process reads its settings from the env."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from keygate.app import KeygateApp, Scope, create_app
from keygate.log_format import configure_logging
from keygate.settings import Settings


def app_from_environment() -> KeygateApp:
    """Build the app from KEYGATE_* variables (for any ASGI server's factory option)."""
    settings = Settings()
    # One line per record on stderr, in KEYGATE_LOG_FORMAT; secrets never reach a log call.
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)


def granian_target() -> Callable[[Scope, Any, Any], Awaitable[None]]:
    """What `keygate serve` workers give granian: the app's dispatch (see `KeygateApp.dispatch`)."""
    return app_from_environment().dispatch
