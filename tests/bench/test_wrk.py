"""Merging wrk runs (totals add up, percentiles from the merged distribution) and taking turns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import wrk


def _raw(requests: int, seconds: float, latencies_us: list[int], **errors: int) -> dict[str, Any]:
    """A wrk result whose 1,000 quantile points are spread over `latencies_us`, in order."""
    points = [latencies_us[i * len(latencies_us) // 1000] for i in range(1000)]
    return {
        "requests": requests,
        "duration_us": int(seconds * 1e6),
        "p50_us": points[499],
        "p90_us": points[899],
        "p99_us": points[989],
        "max_us": max(latencies_us),
        "q": points,
        **{name: errors.get(name, 0) for name in ("connect", "read", "write", "status", "timeout")},
    }


def test_one_run_keeps_wrks_own_percentiles() -> None:
    raw = _raw(5000, 2.0, list(range(1000, 2000)))
    result = wrk.merge("x", 8, [(raw, {"server_cpu_us_per_req": 10.0})])
    assert result.requests == 5000
    assert result.rps == 2500
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (1.499, 1.899, 1.989)
    assert result.extra == {"server_cpu_us_per_req": 10.0}


def test_runs_merge_by_request_weight() -> None:
    fast = _raw(9000, 2.0, [1000] * 1000)  # 9,000 requests at 1 ms
    slow = _raw(1000, 2.0, [5000] * 1000, timeout=3)  # 1,000 at 5 ms
    result = wrk.merge(
        "x",
        64,
        [
            (fast, {"server_cpu_s": 0.9, "main_thread_cpu_s": 0.5, "core1_busy": 1.0}),
            (slow, {"server_cpu_s": 0.3, "main_thread_cpu_s": 0.1}),
        ],
    )
    assert result.requests == 10_000
    assert result.rps == 2500
    assert result.p50_ms == 1.0  # 90 % of the requests took 1 ms
    assert result.p90_ms == 1.0
    assert result.p99_ms == 5.0
    assert result.max_ms == 5.0
    assert result.errors == 3
    assert result.extra["server_cpu_us_per_req"] == 120.0  # 1.2 s over 10,000 requests
    assert result.extra["main_thread_cpu_us_per_req"] == 60.0  # 0.6 s of it on main threads
    assert result.extra["slices"] == 2
    assert (result.extra["slice1_rps"], result.extra["slice2_rps"]) == (4500.0, 500.0)


def test_turns_rotate_and_each_server_gets_its_own_headers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, float, list[tuple[str, str]]]] = []

    def fake_wrk(
        run_dir: Path, url: str, connections: int, seconds: float, headers: Any
    ) -> dict[str, Any]:
        calls.append((url, seconds, list(headers)))
        return _raw(100 if url == "http://a" else 300, seconds, [1000] * 1000)

    monkeypatch.setattr(wrk, "run_wrk", fake_wrk)
    monkeypatch.setattr(wrk.time, "sleep", lambda _: None)
    shared = [("Authorization", "Bearer shared")]
    own = [("Authorization", "Bearer own")]
    a, b = wrk.measure_interleaved(
        tmp_path,
        [wrk.Plan("a", "http://a"), wrk.Plan("b", "http://b", headers=own)],
        64,
        4.0,
        1.0,
        2,
        shared,
    )
    assert [(url, seconds) for url, seconds, _ in calls] == [
        ("http://a", 1.0),
        ("http://b", 1.0),  # warm-ups
        ("http://a", 2.0),
        ("http://b", 2.0),
        ("http://a", 2.0),
        ("http://b", 2.0),
    ]
    assert {url: headers for url, _, headers in calls} == {"http://a": shared, "http://b": own}
    assert (a.requests, b.requests) == (200, 600)
    assert (a.extra["slices"], b.extra["slice2_rps"]) == (2, 150.0)
