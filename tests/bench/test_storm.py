"""Reading h2load's per-request log: statuses, durations, and requests that never finished."""

from __future__ import annotations

from bench.storm import parse_h2load_log, percentile, summarise


def test_rows_become_status_and_seconds() -> None:
    text = "1763861000000000\t200\t1500\n1763861000000100\t502\t250000\n"
    assert parse_h2load_log(text, 2, 9.0) == [(200, 0.0015), (502, 0.25)]


def test_requests_missing_from_the_log_fail_with_the_whole_bursts_time() -> None:
    rows = parse_h2load_log("1763861000000000\t200\t1000\n", 3, 0.75)
    assert rows == [(200, 0.001), (0, 0.75), (0, 0.75)]
    result = summarise("expired token", 1, rows, 1, 0.2)
    assert (result.requests, result.ok, result.statuses) == (3, 1, {"200": 1, "0": 2})
    assert result.p99_ms == 750.0


def test_nearest_rank_percentiles() -> None:
    seconds = [i / 1000 for i in range(500, 0, -1)]
    assert percentile(seconds, 99) == 0.495  # 495 of 500 at or below it: the sixth slowest
    assert percentile(seconds, 50) == 0.250
    assert percentile(seconds, 100) == 0.500
    assert percentile([0.3], 99) == 0.3
    assert percentile([], 99) == 0.0
