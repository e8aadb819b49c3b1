"""Running an operator command: settings from the environment, a runtime, errors made one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from keygate.crypto import DecryptionError
from keygate.errors import ConfigurationError, KeygateError
from keygate.runtime import Runtime
from keygate.settings import Settings
from keygate.store.records import WorkspaceRecord

from .output import fail

T = TypeVar("T")


def load_settings(**given: Any) -> Settings:
    """Settings from KEYGATE_* variables (`given` values win, as command options), or one line."""
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"KEYGATE_{'__'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        fail(f"invalid settings: {problems}")
    except Exception as exc:
        fail(f"invalid settings: {exc}")


def run(action: Callable[[Runtime], Awaitable[T]], settings: Settings | None = None) -> T:
    """Open a runtime, run the action, close it; errors become one line and exit 1."""

    async def _go() -> T:
        runtime = await Runtime.open(settings or load_settings())
        try:
            return await action(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(_go())
    except (ConfigurationError, KeygateError, DecryptionError) as exc:
        fail(str(exc))


async def workspace(runtime: Runtime, name: str | None) -> WorkspaceRecord:
    """The named workspace, or the first one when no name is given."""
    if name is not None:
        found = await runtime.keys.get_workspace(name)
        if found is None:
            raise ConfigurationError(
                f"no workspace named {name!r}; 'keygate keys create --workspace {name}' creates it"
            )
        return found
    every = await runtime.keys.list_workspaces()
    if not every:
        raise ConfigurationError("no workspace yet; run 'keygate init' first")
    return every[0]
