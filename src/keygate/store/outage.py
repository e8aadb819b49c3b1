"""Telling a database outage from a bug, and keeping one account of it per process.

An outage is expected (a restart, a failover, a network cut): it is logged once when it starts
(WARNING) and once when it ends (INFO), counted for `/metrics`, and reported to callers as
503 `store_unavailable` — never as a traceback per request. Anything else stays a bug.
"""

from __future__ import annotations

import logging
import time

import asyncpg.exceptions as pg_errors
from sqlalchemy import exc as sa_errors

from keygate import metrics
from keygate.errors import StoreUnavailable

log = logging.getLogger("keygate.store")

# What the driver raises when the server is gone, shutting down, starting up or refusing
# connections. SQLAlchemy passes some of them through unwrapped (a refused connect is a bare
# ConnectionRefusedError) and wraps the others (`__cause__`).
_DRIVER_UNREACHABLE: tuple[type[BaseException], ...] = (
    pg_errors.PostgresConnectionError,
    pg_errors.OperatorInterventionError,  # admin shutdown, crash shutdown, "starting up"
    pg_errors.TooManyConnectionsError,
    sa_errors.OperationalError,  # SQLite: locked past busy_timeout, cannot open, I/O error
    sa_errors.InterfaceError,
    sa_errors.TimeoutError,  # no pooled connection free in time
)
# Socket errors count only as the standard library raises them: an HTTP client's own OSError
# subclasses (a token endpoint timing out) are not the store's.
_SOCKET_MODULES = frozenset({"builtins", "socket", "ssl"})
# Only wrappers are looked through: a Keygate error raised while handling a socket error says
# what it is itself.
_WRAPPER_MODULES = frozenset({"sqlalchemy", "asyncpg", "aiosqlite", "sqlite3"})


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` (or the driver error it wraps) means the store cannot be reached now."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; never loop on a cycle
        if seen is None:
            return False
        kind = type(seen)
        if isinstance(seen, _DRIVER_UNREACHABLE):
            return True
        if isinstance(seen, OSError) and kind.__module__ in _SOCKET_MODULES:
            return True
        if isinstance(seen, sa_errors.DBAPIError) and seen.connection_invalidated:
            return True
        if kind.__module__.split(".", 1)[0] not in _WRAPPER_MODULES:
            return False
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(exc: BaseException) -> str:
    """The exception's class names, outermost first: enough to tell a refusal from a timeout,
    and never a statement or its parameters (which SQLAlchemy puts in `str(exc)`)."""
    names: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(names) < 4:
        names.append(type(seen).__name__)
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(names)


class StoreOutage:
    """Whether this process can reach its store, as the last store operation found it."""

    def __init__(self) -> None:
        self.down = False
        self.failures = 0
        """Store operations refused because the store was unreachable."""
        self._since = 0.0
        self._failures_before = 0

    def failed(self, exc: BaseException) -> StoreUnavailable:
        """Record an operation that could not reach the store; the error to raise instead."""
        self.failures += 1
        metrics.store_unreachable(outage_began=not self.down)
        if not self.down:
            self.down = True
            self._since = time.monotonic()
            self._failures_before = self.failures - 1
            log.warning(
                "database unreachable (%s): serving from the cache what it holds, "
                "answering 503 store_unavailable for the rest",
                _reason(exc),
            )
        return StoreUnavailable()

    def succeeded(self) -> None:
        """Record an operation that reached the store (ends an outage)."""
        if self.down:
            self.down = False
            metrics.store_reachable()
            log.info(
                "database reachable again after %.1f s (%d operations refused)",
                time.monotonic() - self._since,
                self.failures - self._failures_before,
            )
