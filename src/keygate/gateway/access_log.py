"""The access log: one line per gateway request, recorded as a tuple, formatted and written in
batches.

Going through `logging` cost a quarter of the proxy's CPU (a LogRecord, a formatter and a write
syscall per request), and one `write` per event-loop turn was still about one `write(2)` per
request under load (strace: a request usually finishes alone in its turn). Lines here keep the
log format (`time LEVEL pid=… keygate.access …`) but are built, joined and written to stderr at
most every `interval` seconds, or as soon as `max_lines` are waiting, and on close.
"""

from __future__ import annotations

import asyncio
import os
import time

# ",000" … ",999": the milliseconds of a timestamp, looked up rather than formatted per line.
_MILLIS = tuple(f",{ms:03d}" for ms in range(1000))


class AccessLog:
    """Buffers access lines and writes them in batches to a file descriptor (stderr)."""

    def __init__(self, fd: int = 2, interval: float = 0.05, max_lines: int = 512) -> None:
        self._fd = fd
        self._interval = interval
        self._max_lines = max_lines
        self._head = f" INFO pid={os.getpid()} keygate.access "
        self._entries: list[tuple[float, str, str, str, int, float, str, str]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def record(
        self,
        method: str,
        app: str,
        path: str,
        status: int,
        seconds: float,
        connection_id: str,
        request_id: str,
    ) -> None:
        """Queue one line; it is formatted and written within `interval` seconds."""
        entries = self._entries
        entries.append((time.time(), method, app, path, status, seconds, connection_id, request_id))
        if len(entries) >= self._max_lines:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.flush)

    def flush(self) -> None:
        """Format and write every queued line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._entries:
            return
        entries, self._entries = self._entries, []
        # Lines are built here, once per batch, not on the request path; the duration is
        # rounded to 0.1 ms in integers (float formatting was a third of a line's cost).
        head = self._head
        lines: list[str] = []
        append = lines.append
        for at, method, app, path, status, seconds, connection_id, request_id in entries:
            second = int(at)
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            tenths = int(seconds * 10_000 + 0.5)
            append(
                f"{self._stamp}{_MILLIS[int((at - second) * 1000)]}{head}{method} {app} {path} "
                f"{status} {tenths // 10}.{tenths % 10}ms conn={connection_id or '-'} "
                f"id={request_id}\n"
            )
        data = "".join(lines).encode("utf-8", "replace")
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
        except OSError:  # stderr closed or full: losing access lines beats failing requests
            pass
