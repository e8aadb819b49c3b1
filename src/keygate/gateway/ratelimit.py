"""Keygate's own per-key rate limit: a token bucket per API key, per process."""

from __future__ import annotations

import math
import time

from keygate import metrics
from keygate.errors import RateLimited


class KeyRateLimiter:
    """Refills `rate` tokens a second up to `burst`; a request spends one or gets a 429."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self._rate = rate
        self._burst = float(burst or max(1, math.ceil(rate)))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys

    @property
    def enabled(self) -> bool:
        """Whether a limit is configured."""
        return self._rate > 0

    def check(self, key_id: str, now: float | None = None) -> None:
        """Spend a token for this key or raise RateLimited with Retry-After."""
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key_id, (self._burst, moment))
        tokens = min(self._burst, tokens + (moment - last) * self._rate)
        if tokens < 1:
            wait = math.ceil((1 - tokens) / self._rate)
            self._buckets[key_id] = (tokens, moment)
            metrics.count_rate_limit_refusal("key")
            raise RateLimited(
                f"This API key is over Keygate's limit of {self._rate:g} requests per second. "
                f"Retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        if len(self._buckets) >= self._max_keys and key_id not in self._buckets:
            self._buckets.clear()
        self._buckets[key_id] = (tokens - 1, moment)
