"""A Keygate app that kills its own process (SIGKILL) at a chosen token-refresh step.

Test-only entry point: `python -m uvicorn --factory tests.support.crash_app:create`. The step
comes from KEYGATE_TEST_CRASH_AT (locked, token_received or committed).
"""

from __future__ import annotations

import os
import signal

from keygate.app import KeygateApp, create_app
from keygate.settings import Settings


def create() -> KeygateApp:
    """The app, with a refresh observer that dies at the configured step."""
    crash_at = os.environ.get("KEYGATE_TEST_CRASH_AT", "")

    async def observe(step: str, _connection_id: str) -> None:
        if step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    return create_app(Settings(), on_refresh_step=observe)
