"""Per-process request counters and latency totals, rendered in Prometheus text format."""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import defaultdict

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


class GatewayMetrics:
    """Cheap enough for the hot path: a dict increment and a bucket search per request."""

    def __init__(self) -> None:
        self._requests: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._buckets: defaultdict[str, list[int]] = defaultdict(lambda: [0] * len(_BUCKETS))
        self._seconds: defaultdict[str, float] = defaultdict(float)

    def observe(self, app: str, status: int, seconds: float) -> None:
        """Count one gateway request."""
        self._requests[(app, status)] += 1
        self._seconds[app] += seconds
        self._buckets[app][bisect_left(_BUCKETS, seconds)] += 1

    def render(self) -> str:
        """The metrics of this process as Prometheus exposition text."""
        pid = os.getpid()
        lines = [
            "# HELP keygate_gateway_requests_total Gateway requests by app and status.",
            "# TYPE keygate_gateway_requests_total counter",
        ]
        for (app, status), count in sorted(self._requests.items()):
            lines.append(
                f'keygate_gateway_requests_total{{app="{app}",status="{status}",pid="{pid}"}} '
                f"{count}"
            )
        lines += [
            "# HELP keygate_gateway_request_seconds Gateway request latency.",
            "# TYPE keygate_gateway_request_seconds histogram",
        ]
        for app, buckets in sorted(self._buckets.items()):
            running = 0
            for bound, count in zip(_BUCKETS, buckets, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f'keygate_gateway_request_seconds_bucket{{app="{app}",le="{le}",pid="{pid}"}} '
                    f"{running}"
                )
            lines.append(
                f'keygate_gateway_request_seconds_count{{app="{app}",pid="{pid}"}} {running}'
            )
            lines.append(
                f'keygate_gateway_request_seconds_sum{{app="{app}",pid="{pid}"}} '
                f"{self._seconds[app]:.6f}"
            )
        return "\n".join(lines) + "\n"
