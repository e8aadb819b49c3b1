"""The `keygate` command line: operator commands against the store, and `call` via HTTP."""

from keygate.cli.main import main

__all__ = ["main"]
