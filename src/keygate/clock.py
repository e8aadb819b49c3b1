"""Keygate's time source: a callable giving epoch seconds, passed down so tests move time.

A serving process uses `time.time`. Tests hand the composition root a clock they can stop and
advance, so a token lifetime of an hour is crossed without waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Now, in epoch seconds."""

system_clock: Clock = time.time


def utc_now(clock: Clock) -> datetime:
    """The clock's now as an aware UTC datetime (the form stored timestamps take)."""
    return datetime.fromtimestamp(clock(), UTC)
