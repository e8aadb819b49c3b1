"""The request log: every finished gateway request, queued as one tuple and folded in batches
into the metrics and, when enabled, the access log.

Going through `logging` cost a quarter of the proxy's CPU (a LogRecord, a formatter and a write
syscall per request), and one `write` per event-loop turn was still about one `write(2)` per
request under load (strace: a request usually finishes alone in its turn). So the hot path only
appends a tuple; at most every `interval` seconds, or as soon as `max_lines` are waiting, and on
close, the batch is counted into the metrics and its access lines (`time LEVEL pid=…
keygate.access …`, the text log format, or one JSON object each: `keygate.log_format`) are
built, joined and written to stderr in one go.

The path logged is the request target's path as sent (`raw_path`: still percent-encoded, so
`%0a` stays three printable characters); it and the method are the fields a caller controls,
and they go through `escape_field` — a check of a few C-level string tests per line, and the
escape only for a line that has a byte outside printable ASCII.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from math import floor
from operator import itemgetter

from keygate.gateway.metrics import GatewayMetrics
from keygate.log_format import escape_field, json_line, utc_timestamp

Entry = tuple[
    float, float, str, str, bytes | str, int, str, bytes, bytes, tuple[str, str] | None, bool
]
"""(perf_counter at start, seconds, method, app, path, status, connection id, request id,
query string, caller, by Keygate); the path is the raw path as sent (bytes), or the decoded one
from a server without `raw_path`; the caller is (workspace id, API key prefix) when known; `by
Keygate` is whether Keygate produced the status rather than the upstream."""

_SECONDS = itemgetter(1)
_APP = itemgetter(3)
_STATUS = itemgetter(5)
# ",000" … ",999": the milliseconds of a timestamp, looked up rather than formatted per line.
_MILLIS = tuple(f",{ms:03d}" for ms in range(1000))
_NUMBERS = tuple(str(number) for number in range(1000))


class RequestLog:
    """Queues finished requests; counts them into `metrics` and writes their access lines (to
    `fd`, if `lines`) in batches."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        *,
        lines: bool = True,
        json: bool = False,
        fd: int = 2,
        interval: float = 0.05,
        max_lines: int = 512,
        store: Callable[[list[Entry]], None] | None = None,
    ) -> None:
        self.entries: list[Entry] = []
        """The queue: the gateway appends an `Entry` to it in place (no call per request), then
        calls `appended()` when the queue holds 1 or `max_lines` entries."""
        self._metrics = metrics
        self._lines = lines
        self._json = json
        self._fd = fd
        self._interval = interval
        self.max_lines = max_lines
        self._store = store
        """Takes each batch for the store (`keygate.gateway.log_sink`); it must not block."""
        self._head = f" INFO pid={os.getpid()} keygate.access "
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""
        metrics.count_pending_with(self.flush)

    def appended(self) -> None:
        """After an append: flush a full batch now, or make sure one is due within `interval`
        (calling it after every append is correct too, only slower)."""
        if len(self.entries) >= self.max_lines:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.flush)

    def flush(self) -> None:
        """Count and write every queued request now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.entries:
            return
        entries = self.entries.copy()
        self.entries.clear()  # in place: the gateway holds the list
        self._metrics.add(
            list(map(_APP, entries)), list(map(_STATUS, entries)), list(map(_SECONDS, entries))
        )
        if self._lines:
            self._write(self._json_lines(entries) if self._json else self._text_lines(entries))
        if self._store is not None:
            self._store(entries)

    def _write(self, lines: list[str]) -> None:
        data = "".join(lines).encode("utf-8", "replace")
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError:  # stderr closed or full: losing access lines beats failing requests
            pass

    def _text_lines(self, entries: list[Entry]) -> list[str]:
        # Lines are built here, once per batch, not on the request path, with as little
        # arithmetic and number formatting per line as the format allows: the wall-clock
        # millisecond of each request's end comes from its perf_counter reading and one offset
        # per batch; numbers below 1,000 (statuses, milliseconds, tenths) are looked up, and
        # `floor` costs less than `int()` (a type call). Request ids are ASCII: checked or made so.
        offset_ms = (time.time() - time.perf_counter()) * 1000
        head = self._head
        numbers = _NUMBERS
        millis = _MILLIS
        lines: list[str] = []
        append = lines.append
        # Every field named (the last three are the store's): a star target builds a list.
        for (
            started,
            seconds,
            method,
            app,
            raw,
            status,
            connection_id,
            request_id,
            _q,
            _c,
            _k,
        ) in entries:
            path = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            # The fields a caller controls; escape_field's own test, inlined for the path.
            if not (path.isascii() and path.isprintable()) or " " in path or "\\" in path:
                path = escape_field(path)
            if not (method.isascii() and method.isalpha()):
                method = escape_field(method)
            at_ms = floor(offset_ms + (started + seconds) * 1000)
            second = at_ms // 1000
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            tenths = floor(seconds * 10_000 + 0.5)  # the duration, rounded to 0.1 ms
            whole = tenths // 10
            append(
                f"{self._stamp}{millis[at_ms - second * 1000]}{head}{method} {app} {path} "
                f"{numbers[status]} {numbers[whole] if whole < 1000 else whole}."
                f"{numbers[tenths - whole * 10]}ms conn={connection_id or '-'} "
                f"id={request_id.decode()}\n"
            )
        return lines

    def _json_lines(self, entries: list[Entry]) -> list[str]:
        offset = time.time() - time.perf_counter()
        pid = os.getpid()
        lines = []
        for (
            started,
            seconds,
            method,
            app,
            raw,
            status,
            connection_id,
            request_id,
            _q,
            _c,
            _k,
        ) in entries:
            path = raw.decode("latin-1") if isinstance(raw, bytes) else raw
            entry = {
                "time": utc_timestamp(offset + started + seconds),
                "level": "INFO",
                "pid": pid,
                "logger": "keygate.access",
                "method": escape_field(method),
                "app": app,
                "path": escape_field(path),
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "connection": connection_id or None,
                "request_id": request_id.decode(),
            }
            lines.append(json_line(entry) + "\n")
        return lines
