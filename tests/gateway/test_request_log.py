"""The request log: one access line per request, written in batches, never lost on close, and
the batches counted into the metrics."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from typing import Any

import orjson
import pytest

from keygate.gateway.metrics import GatewayMetrics
from keygate.gateway.request_log import RequestLog

LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO pid=\d+ keygate\.access "
    r"GET klaviyo /klaviyo/api/profiles 200 1\.5ms conn=c-1 id=r-(\d)$"
)


def test_lines_are_batched_and_written_within_the_interval() -> None:
    read_fd, write_fd = os.pipe()
    log = RequestLog(GatewayMetrics(), fd=write_fd, interval=0.05)

    async def requests() -> bytes:
        _record_three(log)
        await asyncio.sleep(0)  # a loop turn is not enough: the batch waits for the interval
        before = os.read(read_fd, 65536) if _readable(read_fd) else b""
        await asyncio.sleep(0.2)
        return before

    try:
        before = asyncio.run(requests())
        written = os.read(read_fd, 65536).decode()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert before == b""
    lines = written.splitlines()
    assert [LINE.match(line).group(1) for line in lines] == ["0", "1", "2"]  # type: ignore[union-attr]


def test_a_full_batch_is_written_at_once_and_close_writes_the_rest() -> None:
    read_fd, write_fd = os.pipe()
    log = RequestLog(GatewayMetrics(), fd=write_fd, interval=3600, max_lines=2)

    async def requests() -> tuple[bytes, bytes]:
        _record_three(log)
        full = os.read(read_fd, 65536) if _readable(read_fd) else b""
        log.flush()
        rest = os.read(read_fd, 65536) if _readable(read_fd) else b""
        return full, rest

    try:
        full, rest = asyncio.run(requests())
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert [LINE.match(x).group(1) for x in full.decode().splitlines()] == ["0", "1"]  # type: ignore[union-attr]
    assert [LINE.match(x).group(1) for x in rest.decode().splitlines()] == ["2"]  # type: ignore[union-attr]


def test_missing_connection_is_a_dash() -> None:
    read_fd, write_fd = os.pipe()
    log = RequestLog(GatewayMetrics(), fd=write_fd)

    async def one() -> None:
        _queue(log, time.perf_counter(), 0.0001, "POST", "-", "/nope/x", 404, "", b"r")
        log.flush()

    try:
        asyncio.run(one())
        assert " 404 0.1ms conn=- id=r\n" in os.read(read_fd, 4096).decode()
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "0.0ms"),
        (0.00004, "0.0ms"),
        (0.00006, "0.1ms"),
        (0.01234, "12.3ms"),
        (0.0999, "99.9ms"),
        (0.09996, "100.0ms"),
        (2.5, "2500.0ms"),
        (61.23456, "61234.6ms"),
    ],
)
def test_duration_is_in_milliseconds_to_a_tenth(seconds: float, shown: str) -> None:
    read_fd, write_fd = os.pipe()
    log = RequestLog(GatewayMetrics(), fd=write_fd)

    async def one() -> None:
        _queue(log, time.perf_counter(), seconds, "GET", "klaviyo", "/klaviyo/x", 200, "c", b"r")
        log.flush()

    try:
        asyncio.run(one())
        assert f" 200 {shown} conn=c id=r\n" in os.read(read_fd, 4096).decode()
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_timestamp_carries_the_milliseconds_of_the_request() -> None:
    read_fd, write_fd = os.pipe()
    log = RequestLog(GatewayMetrics(), fd=write_fd)
    at = time.time()

    async def one() -> None:
        _queue(
            log, time.perf_counter() - 0.001, 0.001, "GET", "klaviyo", "/klaviyo/x", 200, "c", b"r"
        )
        log.flush()

    try:
        asyncio.run(one())
        stamp = os.read(read_fd, 4096).decode().split(" INFO ")[0]
    finally:
        os.close(read_fd)
        os.close(write_fd)
    written = time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:]) / 1000
    assert stamp[19] == ","
    assert len(stamp) == 23
    assert at - 0.001 <= written <= at + 1.0


@pytest.mark.parametrize("json_lines", [False, True])
def test_caller_fields_are_escaped_in_both_formats(json_lines: bool) -> None:
    read_fd, write_fd = os.pipe()
    log = RequestLog(GatewayMetrics(), fd=write_fd, json=json_lines)

    async def two() -> None:
        raw = b"/klaviyo/a%0ab/caf\xc3\xa9"  # a raw path: percent-encoded, and raw bytes
        _queue(log, time.perf_counter(), 0.001, "GET", "klaviyo", raw, 200, "c", b"r-1")
        decoded = "/klaviyo/a\nb c\x1b"  # a server without raw_path: the decoded path
        _queue(log, time.perf_counter(), 0.001, "M\x00", "klaviyo", decoded, 400, "", b"r-2")
        log.flush()

    try:
        asyncio.run(two())
        lines = os.read(read_fd, 8192).decode().splitlines()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert len(lines) == 2
    if json_lines:
        first, second = (orjson.loads(line) for line in lines)
        assert first["logger"] == "keygate.access"
        assert (first["method"], first["path"]) == ("GET", "/klaviyo/a%0ab/caf\\xc3\\xa9")
        assert (first["status"], first["connection"], first["request_id"]) == (200, "c", "r-1")
        assert (second["method"], second["path"]) == ("M\\x00", "/klaviyo/a\\nb\\x20c\\x1b")
        assert second["connection"] is None
    else:
        assert " GET klaviyo /klaviyo/a%0ab/caf\\xc3\\xa9 200 " in lines[0]
        assert " M\\x00 klaviyo /klaviyo/a\\nb\\x20c\\x1b 400 " in lines[1]


def test_batches_are_counted_into_the_metrics_and_render_counts_the_queue() -> None:
    metrics = GatewayMetrics()
    log = RequestLog(metrics, lines=False, interval=3600, max_lines=3)
    statuses = [200, 200, 404, 200, 502]
    seconds = [0.001, 0.02, 0.003, 0.3, 7.0]
    # The metrics are the process's: an app name of this test's own keeps other tests out.
    app = f"app-{uuid.uuid4().hex[:8]}"
    other = f"other-{uuid.uuid4().hex[:8]}"

    async def requests() -> bytes:
        for status, spent in zip(statuses, seconds, strict=True):
            _queue(log, time.perf_counter(), spent, "GET", app, f"/{app}/x", status, "", b"r")
        _queue(log, time.perf_counter(), 0.004, "GET", other, "/nope/x", 404, "", b"r")
        # 3 counted as a full batch, 3 still queued: rendering counts them too.
        return metrics.render()

    text = asyncio.run(requests()).decode()
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }
    assert values[f'keygate_gateway_requests_total{{app="{app}",status="200"}}'] == 3
    assert values[f'keygate_gateway_requests_total{{app="{app}",status="404"}}'] == 1
    assert values[f'keygate_gateway_requests_total{{app="{app}",status="502"}}'] == 1
    assert values[f'keygate_gateway_requests_total{{app="{other}",status="404"}}'] == 1
    assert values[f'keygate_gateway_request_seconds_bucket{{app="{app}",le="0.005"}}'] == 2
    assert values[f'keygate_gateway_request_seconds_bucket{{app="{app}",le="0.025"}}'] == 3
    assert values[f'keygate_gateway_request_seconds_bucket{{app="{app}",le="5.0"}}'] == 4
    assert values[f'keygate_gateway_request_seconds_bucket{{app="{app}",le="+Inf"}}'] == 5
    assert values[f'keygate_gateway_request_seconds_count{{app="{other}"}}'] == 1
    assert values[f'keygate_gateway_request_seconds_sum{{app="{app}"}}'] == pytest.approx(7.324)
    assert log.entries == []


def _record_three(log: RequestLog) -> None:
    """Three requests for /klaviyo/api/profiles on connection c-1, with ids r-0, r-1, r-2."""
    for index in range(3):
        _queue(
            log,
            time.perf_counter(),
            0.0015,
            "GET",
            "klaviyo",
            "/klaviyo/api/profiles",
            200,
            "c-1",
            f"r-{index}".encode(),
        )


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


def _queue(log: RequestLog, *entry: Any) -> None:
    """Queue one request's entry as the gateway does: append, then `appended()`."""
    log.entries.append((*entry, b"", None, False))  # type: ignore[arg-type]
    log.appended()
