"""Load with wrk (Debian), pinned to the load core; results read from a Lua `done` hook as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import LOAD_CORE, pinned

WRK = shutil.which("wrk") or "/usr/bin/wrk"
_MARKER = "BENCH-JSON "
_ERRORS = ("connect", "read", "write", "status", "timeout")
Raw = dict[str, Any]
Around = Callable[[Callable[[], Raw]], tuple[Raw, dict[str, float]]]

_REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i = 1, 1000 do
    q[i] = string.format('%d', latency:percentile(i / 10))
  end
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"q":[%s]}\\n',
    "MARKER", summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(q, ',')))
end
""".replace("MARKER", _MARKER)


@dataclass
class LoadResult:
    """One wrk measurement."""

    label: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def _script(run_dir: Path) -> Path:
    path = run_dir / "report.lua"
    if not path.exists():
        path.write_text(_REPORT_LUA)
    return path


def run_wrk(
    run_dir: Path,
    url: str,
    connections: int,
    seconds: float,
    headers: Sequence[tuple[str, str]] = (),
) -> Raw:
    """One wrk run (one thread, pinned to the load core); the raw numbers of its done hook,
    with `q`, the latency (µs) at every 0.1 % from 0.1 % to 100 %."""
    argv = [
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(_script(run_dir)),
    ]
    for name, value in headers:
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    done = subprocess.run(
        pinned(LOAD_CORE, argv), capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith(_MARKER):
            parsed: Raw = json.loads(line[len(_MARKER) :])
            return parsed
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stdout}{done.stderr}")


def measure(
    run_dir: Path,
    label: str,
    url: str,
    connections: int,
    seconds: float,
    warmup: float,
    headers: Sequence[tuple[str, str]] = (),
    around: Around | None = None,
) -> LoadResult:
    """Warm up, then measure; `around` may wrap the measured run to sample e.g. CPU time."""
    if warmup > 0:
        run_wrk(run_dir, url, connections, warmup, headers)
        time.sleep(0.2)
    return merge(label, connections, [_run(run_dir, url, connections, seconds, headers, around)])


@dataclass
class Plan:
    """One server to measure in interleaved slices."""

    label: str
    url: str
    around: Around | None = None
    headers: Sequence[tuple[str, str]] | None = None
    """This server's request headers, when not the run's shared ones."""


def measure_interleaved(
    run_dir: Path,
    plans: Sequence[Plan],
    connections: int,
    seconds: float,
    warmup: float,
    slices: int,
    headers: Sequence[tuple[str, str]] = (),
) -> list[LoadResult]:
    """Measure several servers for `seconds` each, in `slices` turns taken in rotation.

    On a shared machine the speed drifts within a run; measured back to back, one server can get
    a quiet stretch and the next a busy one. Taking turns puts every server in every stretch, so
    their ratios compare the servers rather than the moments they were measured in. Requests,
    time and CPU are summed over the slices; percentiles come from the merged latency
    distribution; each slice's requests/s is kept in `extra` (`slice<i>_rps`).
    """
    for plan in plans:
        if warmup > 0:
            run_wrk(run_dir, plan.url, connections, warmup, plan.headers or headers)
    taken: dict[str, list[tuple[Raw, dict[str, float]]]] = {plan.label: [] for plan in plans}
    each = max(1.0, seconds / slices)
    for _ in range(slices):
        for plan in plans:
            time.sleep(0.2)
            taken[plan.label].append(
                _run(run_dir, plan.url, connections, each, plan.headers or headers, plan.around)
            )
    return [merge(plan.label, connections, taken[plan.label]) for plan in plans]


def _run(
    run_dir: Path,
    url: str,
    connections: int,
    seconds: float,
    headers: Sequence[tuple[str, str]],
    around: Around | None,
) -> tuple[Raw, dict[str, float]]:
    def measured() -> Raw:
        return run_wrk(run_dir, url, connections, seconds, headers)

    return around(measured) if around is not None else (measured(), {})


def merge(label: str, connections: int, runs: Sequence[tuple[Raw, dict[str, float]]]) -> LoadResult:
    """One result from one or more runs of the same server (see `measure_interleaved`)."""
    requests = sum(int(raw["requests"]) for raw, _ in runs)
    duration = sum(raw["duration_us"] for raw, _ in runs) / 1e6
    detail = {name: sum(int(raw[name]) for raw, _ in runs) for name in _ERRORS}
    # Each run's quantile points, weighted by the requests each point stands for.
    points = sorted(
        (int(value), raw["requests"] / len(raw["q"])) for raw, _ in runs for value in raw["q"]
    )

    def percentile(q: float) -> float:
        wanted, seen = requests * q / 100, 0.0
        for value, weight in points:
            seen += weight
            if seen >= wanted - 1e-9:
                return value / 1000
        return points[-1][0] / 1000 if points else 0.0

    extra: dict[str, float] = {}
    if len(runs) == 1:
        extra = dict(runs[0][1])
    else:
        for key in sorted({k for _, sample in runs for k in sample if k.endswith("_cpu_s")}):
            cpu = sum(sample.get(key, 0.0) for _, sample in runs)
            extra[key] = round(cpu, 3)
            per_request = key.removesuffix("_s") + "_us_per_req"
            extra[per_request] = round(1e6 * cpu / requests, 1) if requests else 0.0
        for key in sorted({k for _, sample in runs for k in sample if k.endswith("_busy")}):
            extra[key] = round(sum(sample.get(key, 0.0) for _, sample in runs) / len(runs), 3)
        extra["slices"] = len(runs)
        for index, (raw, _) in enumerate(runs, start=1):
            seconds = raw["duration_us"] / 1e6
            extra[f"slice{index}_rps"] = round(raw["requests"] / seconds, 1) if seconds else 0.0
    return LoadResult(
        label=label,
        connections=connections,
        requests=requests,
        seconds=duration,
        rps=requests / duration if duration else 0.0,
        p50_ms=percentile(50),
        p90_ms=percentile(90),
        p99_ms=percentile(99),
        max_ms=max(int(raw["max_us"]) for raw, _ in runs) / 1000,
        errors=sum(detail.values()),
        error_detail=detail,
        extra=extra,
    )
