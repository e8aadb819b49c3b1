"""Per-process request counters and latency totals, rendered in Prometheus text format."""

from __future__ import annotations

import os
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import compress

from keygate.store.outage import StoreOutage

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


class GatewayMetrics:
    """Request counts and latency histograms per app, added a batch at a time.

    The gateway does not count on the request path: its request log queues each request and
    adds the batch here (see `request_log`); `render` first has the queue counted.
    """

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, int]] = Counter()
        self._buckets: defaultdict[str, list[int]] = defaultdict(lambda: [0] * len(_BUCKETS))
        self._seconds: defaultdict[str, float] = defaultdict(float)
        self._count_pending: Callable[[], None] | None = None

    def count_pending_with(self, flush: Callable[[], None]) -> None:
        """Have `render` call `flush` first, so requests still queued are counted."""
        self._count_pending = flush

    def add(self, apps: list[str], statuses: list[int], seconds: list[float]) -> None:
        """Count a batch of gateway requests, given as columns: request i is `apps[i]`,
        `statuses[i]`, `seconds[i]`.

        Per batch, not per request: the common batch (one app, one status) costs a few C loops
        over the columns; the histogram comes from sorting the latencies once and bisecting
        them at the bucket bounds.
        """
        names = set(apps)
        for app in names:
            if len(names) == 1:
                mine, spent = statuses, sorted(seconds)
            else:
                picks = [name == app for name in apps]
                mine, spent = list(compress(statuses, picks)), sorted(compress(seconds, picks))
            if mine.count(mine[0]) == len(mine):
                self._requests[app, mine[0]] += len(mine)
            else:
                for status, count in Counter(mine).items():
                    self._requests[app, status] += count
            self._seconds[app] += sum(spent)
            buckets = self._buckets[app]
            below = 0
            for index, bound in enumerate(_BUCKETS):
                upto = bisect_right(spent, bound)
                buckets[index] += upto - below
                if upto == len(spent):  # the rest of the buckets get nothing
                    break
                below = upto

    def render(self) -> str:
        """The metrics of this process as Prometheus exposition text."""
        if self._count_pending is not None:
            self._count_pending()
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


def render_store_metrics(outage: StoreOutage) -> str:
    """The database's reachability from this process, as Prometheus exposition text."""
    pid = os.getpid()
    return (
        "# HELP keygate_store_up Whether the last database operation reached the database.\n"
        "# TYPE keygate_store_up gauge\n"
        f'keygate_store_up{{pid="{pid}"}} {0 if outage.down else 1}\n'
        "# HELP keygate_store_outages_total Database outages seen (unreachable, then back).\n"
        "# TYPE keygate_store_outages_total counter\n"
        f'keygate_store_outages_total{{pid="{pid}"}} {outage.outages}\n'
        "# HELP keygate_store_unavailable_total Database operations refused: unreachable.\n"
        "# TYPE keygate_store_unavailable_total counter\n"
        f'keygate_store_unavailable_total{{pid="{pid}"}} {outage.failures}\n'
    )
