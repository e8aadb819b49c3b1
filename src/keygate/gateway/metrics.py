"""The gateway's request counts and latencies, added to `keygate.metrics` a batch at a time."""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from itertools import compress

from keygate import metrics

_BOUNDS = metrics.LATENCY_BUCKETS


class GatewayMetrics:
    """Request counts and latency histograms per app, added a batch at a time.

    The gateway does not count on the request path: its request log queues each request and
    adds the batch here (see `request_log`); `render` first has the queue counted.
    """

    def __init__(self) -> None:
        self._count_pending: Callable[[], None] | None = None

    def count_pending_with(self, flush: Callable[[], None]) -> None:
        """Have `render` call `flush` first, so requests still queued are counted."""
        self._count_pending = flush

    def add(self, apps: list[str], statuses: list[int], seconds: list[float]) -> None:
        """Count a batch of gateway requests, given as columns: request i is `apps[i]`,
        `statuses[i]`, `seconds[i]`.

        Per batch, not per request (one prometheus_client write costs about 2 µs): the common
        batch (one app, one status) costs a few C loops over the columns and one write per
        counter; the histogram comes from sorting the latencies once and bisecting them at the
        bucket bounds, one write per bucket that got any.
        """
        names = set(apps)
        for app in names:
            if len(names) == 1:
                mine, spent = statuses, sorted(seconds)
            else:
                picks = [name == app for name in apps]
                mine, spent = list(compress(statuses, picks)), sorted(compress(seconds, picks))
            if mine.count(mine[0]) == len(mine):
                metrics.count_requests(app, mine[0], len(mine))
            else:
                for status, count in Counter(mine).items():
                    metrics.count_requests(app, status, count)
            per_bucket = [0] * len(_BOUNDS)
            below = 0
            for index, bound in enumerate(_BOUNDS):
                upto = bisect_right(spent, bound)
                per_bucket[index] = upto - below
                if upto == len(spent):  # the rest of the buckets get nothing
                    break
                below = upto
            metrics.observe_latencies(app, per_bucket, sum(spent))

    def render(self) -> bytes:
        """Every metric of the server as Prometheus exposition text, this process's queued
        requests counted first."""
        if self._count_pending is not None:
            self._count_pending()
        return metrics.render()
