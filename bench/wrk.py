"""Load with wrk (Debian), pinned to the load core; results read from a Lua `done` hook as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.procs import LOAD_CORE, pinned

WRK = shutil.which("wrk") or "/usr/bin/wrk"
_MARKER = "BENCH-JSON "

_REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    "MARKER", summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
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
) -> dict[str, int]:
    """One wrk run (one thread, pinned to the load core); the raw numbers of its done hook."""
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
            parsed: dict[str, int] = json.loads(line[len(_MARKER) :])
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
    around: Callable[[Callable[[], dict[str, int]]], tuple[dict[str, int], dict[str, float]]]
    | None = None,
) -> LoadResult:
    """Warm up, then measure; `around` may wrap the measured run to sample e.g. CPU time."""
    if warmup > 0:
        run_wrk(run_dir, url, connections, warmup, headers)
        time.sleep(0.2)

    def measured() -> dict[str, int]:
        return run_wrk(run_dir, url, connections, seconds, headers)

    raw, extra = around(measured) if around is not None else (measured(), {})
    duration = raw["duration_us"] / 1e6
    detail = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")}
    return LoadResult(
        label=label,
        connections=connections,
        requests=raw["requests"],
        seconds=duration,
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=sum(detail.values()),
        error_detail=detail,
        extra=extra,
    )
