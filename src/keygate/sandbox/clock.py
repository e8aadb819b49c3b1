"""An adjustable wall clock, so tests (in-process or over the admin API) can move time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class SandboxClock:
    """Wall-clock seconds from a source function, plus an offset tests can advance."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self.source = source
        self.offset = 0.0

    def now(self) -> float:
        """Return the current sandbox time in epoch seconds."""
        return self.source() + self.offset

    def advance(self, seconds: float) -> None:
        """Move sandbox time forward (codes, tokens and rate windows age accordingly)."""
        self.offset += seconds

    def freeze(self, at: float | None = None) -> None:
        """Stop the clock at `at` (default: now); `advance` still moves it."""
        frozen = self.now() if at is None else at
        self.source = lambda: frozen
        self.offset = 0.0

    def utcnow(self) -> datetime:
        """Return the current sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=UTC)
