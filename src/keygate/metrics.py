"""Keygate's Prometheus metrics: defined once here, summed over the worker processes of a server.

`keygate serve` gives its workers one fresh directory (`PROMETHEUS_MULTIPROC_DIR`, read by
`Settings.metrics_dir`); each process then writes its values to memory-mapped files there
(prometheus_client's multiprocess mode) and `/metrics`, whichever worker answers it, reads and
sums them all. Without a directory (Keygate in a test, or under another server with one process)
the values live in the process's memory.

The multiprocess mode shapes this module:

- Every value is a prometheus_client metric (custom collectors are not read across processes).
- A gauge says how processes combine: `keygate_store_up` is the minimum over live workers (0 if
  any of them finds the database unreachable), and a dead worker's gauges are dropped at the
  next scrape (`mark_process_dead`); its counters stay in the sums, as counters must.
- One observation writes to an mmap'd file under a lock, about 2 µs: too much for the gateway's
  per-request budget, so its requests are counted a batch at a time (`count_requests`,
  `observe_latencies`, fed by `keygate.gateway.metrics`). Rarer events (a refresh, a refusal,
  a reload) are counted one at a time by the functions below.

Use the functions, not the metric objects: a forked worker builds its own set (`use_directory`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
"""Upper bounds of the gateway latency histogram, in seconds (the last is +Inf)."""

REFRESH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))
"""Upper bounds of the token-refresh latency histogram, in seconds."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of `render`'s text: the classic text format every Prometheus reads."""

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


class _Metrics:
    """One process's metric objects, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "keygate_gateway_requests",
            "Gateway requests by app and HTTP status.",
            ["app", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "keygate_gateway_request_seconds",
            "Gateway request latency, from the request's headers to its last byte.",
            ["app"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "keygate_upstream_errors",
            "Gateway requests the upstream did not answer, by kind (timeout, unreachable, client).",
            ["kind"],
            registry=registry,
        )
        self.refresh_attempts = Counter(
            "keygate_refresh_attempts",
            "Token requests made to refresh an OAuth access token, by app.",
            ["app"],
            registry=registry,
        )
        self.refresh_failures = Counter(
            "keygate_refresh_failures",
            "Token refresh requests that failed, by app.",
            ["app"],
            registry=registry,
        )
        self.refresh_latency = Histogram(
            "keygate_refresh_seconds",
            "Time the provider's token endpoint took to answer a refresh, by app.",
            ["app"],
            buckets=REFRESH_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "keygate_rate_limit_refusals",
            "Requests refused 429 by a rate limit, by scope (key, address, control).",
            ["scope"],
            registry=registry,
        )
        self.cache_reloads = Counter(
            "keygate_cache_reloads",
            "Cache clears after a write, by what announced it (local, poll, notify).",
            ["reason"],
            registry=registry,
        )
        self.store_up = Gauge(
            "keygate_store_up",
            "Whether the last database operation of every worker reached the database.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.store_outages = Counter(
            "keygate_store_outages",
            "Database outages seen (unreachable, then back).",
            registry=registry,
        )
        self.store_unavailable = Counter(
            "keygate_store_unavailable",
            "Database operations refused: unreachable.",
            registry=registry,
        )
        self.request_log_dropped = Counter(
            "keygate_request_log_dropped",
            "Request-log rows not stored, by reason (queue_full: the store fell behind; "
            "store_error: the write failed).",
            ["reason"],
            registry=registry,
        )
        self.webhook_attempts = Counter(
            "keygate_webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered, failed, disabled).",
            ["outcome"],
            registry=registry,
        )
        # The gateway's children by label values: `labels()` takes a lock and checks its
        # arguments each call, several times the cost of the write itself.
        self.requests_of: dict[tuple[str, int], Counter] = {}
        self.latency_of: dict[str, Histogram] = {}


_metrics: _Metrics | None = None
_directory: Path | None = None
_pid = 0


def use_directory(directory: Path | None) -> None:
    """Count this process's metrics in `directory`, shared by every process of the server
    (None: in memory). Call it at start-up, before anything is counted; a forked process
    calling it again gets metrics of its own."""
    global _metrics, _directory, _pid
    if _metrics is not None and _directory == directory and _pid == os.getpid():
        return
    if directory is not None:
        # prometheus_client opens its files in the directory this variable names; `keygate
        # serve` sets it for its workers, and a caller passing another must not write elsewhere.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        if not getattr(values.ValueClass, "_multiprocess", False):
            # It picks its value class when first imported: a process that imported it before
            # the variable was set would keep its values in memory.
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _directory, _pid = directory, os.getpid()
    _metrics = _Metrics()


def _current() -> _Metrics:
    if _metrics is None or _pid != os.getpid():
        use_directory(_directory)
    assert _metrics is not None
    return _metrics


def process_started() -> None:
    """Announce a serving process (its gauges start at their healthy values)."""
    _current().store_up.set(1)


def process_exited(pid: int | None = None) -> None:
    """Drop the gauges of a process that has exited (this one, if no pid is given)."""
    if _directory is not None:
        mark_process_dead(os.getpid() if pid is None else pid, str(_directory))  # type: ignore[no-untyped-call]


def count_requests(app: str, status: int, count: int) -> None:
    """Count `count` gateway requests of `app` answered with `status`."""
    metrics = _current()
    child = metrics.requests_of.get((app, status))
    if child is None:
        child = metrics.requests_of[app, status] = metrics.requests.labels(app, str(status))
    child.inc(count)


def observe_latencies(app: str, per_bucket: Sequence[int], seconds: float) -> None:
    """Add a batch of gateway latencies of `app`: how many fell in each `LATENCY_BUCKETS` bucket
    (not cumulative), and their total in seconds.

    prometheus_client observes one value at a time (a locked mmap write per bucket and sum,
    ~2 µs each); a batch adds each bucket's count in one write, through the child's bucket and
    sum values, the very ones `observe` writes.
    """
    metrics = _current()
    child = metrics.latency_of.get(app)
    if child is None:
        child = metrics.latency_of[app] = metrics.latency.labels(app)
    buckets = child._buckets  # private: see above; the prometheus_client range is pinned
    for index, count in enumerate(per_bucket):
        if count:
            buckets[index].inc(count)
    child._sum.inc(seconds)


def count_upstream_error(kind: str) -> None:
    """Count a gateway request the upstream did not answer (`timeout`, `unreachable`, `client`)."""
    _current().upstream_errors.labels(kind).inc()


def observe_refresh(app: str, *, ok: bool, seconds: float) -> None:
    """Count one token-refresh request to `app`'s provider: its outcome and latency."""
    metrics = _current()
    metrics.refresh_attempts.labels(app).inc()
    if not ok:
        metrics.refresh_failures.labels(app).inc()
    metrics.refresh_latency.labels(app).observe(seconds)


def count_rate_limit_refusal(scope: str) -> None:
    """Count a request refused by a rate limit (`key`, `address`, `control`)."""
    _current().rate_limited.labels(scope).inc()


def count_cache_reload(reason: str) -> None:
    """Count a cache clear, by what announced the write (`local`, `poll`, `notify`)."""
    _current().cache_reloads.labels(reason).inc()


def count_request_log_dropped(reason: str, rows: int) -> None:
    """Count request-log rows dropped (`queue_full`, `store_error`)."""
    if rows:
        _current().request_log_dropped.labels(reason).inc(rows)


def count_webhook_attempt(outcome: str) -> None:
    """Count a webhook delivery attempt (`delivered`, `failed`, `disabled`)."""
    _current().webhook_attempts.labels(outcome).inc()


def store_unreachable(*, outage_began: bool) -> None:
    """Count a store operation refused because the database is unreachable."""
    metrics = _current()
    metrics.store_unavailable.inc()
    if outage_began:
        metrics.store_outages.inc()
        metrics.store_up.set(0)


def store_reachable() -> None:
    """The database answered again after an outage."""
    _current().store_up.set(1)


def render() -> bytes:
    """Every metric of the server (every process sharing the directory), as Prometheus text."""
    metrics = _current()
    if _directory is None:
        return generate_latest(metrics.registry)
    _forget_dead_processes(_directory)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(_directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of processes that have gone (a worker killed, a crash): a worker
    that exits cleanly drops its own (`process_exited`)."""
    for name in os.listdir(directory):
        found = _LIVE_GAUGE_FILE.match(name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, under another user


def prepare_directory(directory: Path) -> None:
    """Make `directory` an empty one for a new server's metrics (a stale file from an earlier
    server would be summed in)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            (directory / name).unlink()
