"""Reading h2load's per-request log: statuses, durations, and requests that never finished."""

from __future__ import annotations

from bench.storm import (
    EXPIRED,
    FRESH,
    STACK_FLOOR,
    floor_notes,
    parse_h2load_log,
    percentile,
    summarise,
)


def test_rows_become_status_and_seconds() -> None:
    text = "1763861000000000\t200\t1500\n1763861000000100\t502\t250000\n"
    assert parse_h2load_log(text, 2, 9.0) == [(200, 0.0015), (502, 0.25)]


def test_requests_missing_from_the_log_fail_with_the_whole_bursts_time() -> None:
    rows = parse_h2load_log("1763861000000000\t200\t1000\n", 3, 0.75)
    assert rows == [(200, 0.001), (0, 0.75), (0, 0.75)]
    result = summarise(EXPIRED, 1, rows, 1, 0.2)
    assert (result.requests, result.ok, result.statuses) == (3, 1, {"200": 1, "0": 2})
    assert result.p99_ms == 750.0


def test_nearest_rank_percentiles() -> None:
    seconds = [i / 1000 for i in range(500, 0, -1)]
    assert percentile(seconds, 99) == 0.495  # 495 of 500 at or below it: the sixth slowest
    assert percentile(seconds, 50) == 0.250
    assert percentile(seconds, 100) == 0.500
    assert percentile([0.3], 99) == 0.3
    assert percentile([], 99) == 0.0


def _run(label: str, workers: int, p99_s: float) -> dict[str, object]:
    rows = [(200, p99_s)] * 500
    return summarise(label, workers, rows, 1 if label == EXPIRED else 0, 0.254).as_dict()


def test_each_storm_is_set_against_the_token_and_the_stacks_own_burst() -> None:
    runs = [
        _run(STACK_FLOOR, 1, 0.131),
        _run(EXPIRED, 1, 0.402),
        _run(FRESH, 1, 0.150),
        _run(EXPIRED, 2, 0.380),
    ]
    assert floor_notes(runs) == [
        "Refresh storm 1w: p99 402 ms = the token's 254 ms + 148 ms; the same burst through the "
        "bare pass-through, with no refresh at all, has p99 131 ms, against the 50 ms the bound "
        "leaves for it.",
        "Refresh storm 2w: p99 380 ms = the token's 254 ms + 126 ms; the same burst through the "
        "bare pass-through, with no refresh at all, has p99 131 ms, against the 50 ms the bound "
        "leaves for it.",
    ]


def test_without_the_stack_floor_the_note_says_only_what_was_measured() -> None:
    assert floor_notes([_run(EXPIRED, 1, 0.300)]) == [
        "Refresh storm 1w: p99 300 ms = the token's 254 ms + 46 ms."
    ]
