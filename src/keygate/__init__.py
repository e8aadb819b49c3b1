"""Keygate: a self-hosted API gateway with managed OAuth.

`from keygate import Keygate, AsyncKeygate` gives the Python SDK. They are loaded on first use
(PEP 562), so `import keygate`, which every CLI command does, imports neither httpx nor the
server: `keygate --help` stays fast.
"""

from __future__ import annotations

from keygate.version import __version__

# Not `typing.TYPE_CHECKING`: importing typing is most of this module's cost (mypy reads the
# name the same way).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keygate.sdk import AsyncKeygate, Keygate

__all__ = ["AsyncKeygate", "Keygate", "__version__"]

_LAZY = frozenset({"Keygate", "AsyncKeygate"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from keygate import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'keygate' has no attribute {name!r}")
