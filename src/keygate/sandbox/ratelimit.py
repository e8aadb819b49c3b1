"""Fixed-window rate limiting, the scheme both providers describe."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from keygate.sandbox.clock import SandboxClock


@dataclass(frozen=True)
class Window:
    """At most `limit` requests per `seconds`-long window aligned on epoch multiples."""

    limit: int
    seconds: int
    name: str = ""


@dataclass(frozen=True)
class Decision:
    """The outcome of one request against a set of windows.

    `window` is the window that refused the request, or, when allowed, the one with the fewest
    requests left (what `RateLimit-*` headers report).
    """

    allowed: bool
    window: Window
    remaining: int
    reset_after: int


@dataclass
class FixedWindowLimiter:
    """Counts requests per key in fixed windows; refused requests are not counted."""

    clock: SandboxClock
    counts: dict[tuple[str, int, int], int] = field(default_factory=dict)

    def clear(self) -> None:
        """Forget every window."""
        self.counts.clear()

    def hit(self, key: str, windows: Sequence[Window]) -> Decision:
        """Record one request for `key` if every window has room; say which window decided."""
        now = self.clock.now()
        states = []
        for window in windows:
            start = math.floor(now / window.seconds) * window.seconds
            used = self.counts.get((key, window.seconds, start), 0)
            reset_after = max(1, math.ceil(start + window.seconds - now))
            states.append((window, start, used, reset_after))
        for window, _start, used, reset_after in states:
            if used >= window.limit:
                return Decision(False, window, 0, reset_after)
        self._drop_stale(now)
        tightest: Decision | None = None
        for window, start, used, reset_after in states:
            self.counts[(key, window.seconds, start)] = used + 1
            remaining = window.limit - used - 1
            if tightest is None or remaining < tightest.remaining:
                tightest = Decision(True, window, remaining, reset_after)
        if tightest is None:
            raise ValueError("at least one window is required")
        return tightest

    def _drop_stale(self, now: float) -> None:
        # Keeps memory bounded during long load tests without a background task.
        if len(self.counts) < 10_000:
            return
        for key in [k for k in self.counts if k[2] + k[1] <= now]:
            del self.counts[key]
