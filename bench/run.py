"""`make bench`: every scenario of issue 4 in one run, then the table, the targets and JSON.

Core 0 carries the load (wrk, curl, the burst client, the upstream nginx, the sandbox,
PostgreSQL); core 1 carries the server under test alone. Everything started is stopped at the
end, on failure and on Ctrl-C. Exit status: 0 when no request failed, 1 otherwise, 2 when the
run itself broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import psutil

from bench import scenarios
from bench.environment import Environment
from bench.procs import LOAD_CORE, Supervisor
from bench.report import Report, markdown

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _meta(args: argparse.Namespace) -> dict[str, object]:
    return {
        "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": f"{psutil.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}",
        "python": platform.python_version(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "slices": args.slices,
        "load_average_at_start": list(os.getloadavg()),
    }


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Keygate benchmark harness (issue 4).")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each")
    parser.add_argument(
        "--only",
        default="main,scale,bodies,postgres,storm,proactive",
        help="comma list of scenarios: main,scale,bodies,postgres,storm,proactive and, not run by "
        "default, instructions (valgrind counts per request, about 4 minutes)",
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=5,
        help="main table: measure nginx, bare and Keygate in this many interleaved turns",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args()


def main() -> int:
    """Run the benchmark; the exit status says whether any request failed."""
    args = _parse()
    if (psutil.cpu_count() or 1) < 2:
        print("the harness needs two cores (load on core 0, server on core 1)", file=sys.stderr)
        return 2
    # The harness's own clients belong on the load core; children inherit it unless pinned.
    os.sched_setaffinity(0, {LOAD_CORE})
    report = Report(meta=_meta(args))
    chosen = set(args.only.split(","))
    started = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="keygate-bench-"))
    broken = False
    try:
        with Supervisor(run_dir) as sup:
            env = Environment.start(sup, run_dir, args.duration, args.warmup)
            env.slices = max(1, args.slices)
            steps = [
                ("main", scenarios.main_table),
                ("scale", scenarios.scale_of_state),
                ("bodies", scenarios.big_bodies),
                ("postgres", scenarios.postgres),
                ("storm", scenarios.refresh_storm),
                ("proactive", scenarios.proactive_refresh),
                ("instructions", scenarios.instruction_counts),
            ]
            for name, step in steps:
                if name not in chosen:
                    continue
                print(f"== {name}", flush=True)
                try:
                    step(env, report)
                except Exception as exc:  # record it, clean up, go on with the next scenario
                    broken = True
                    report.notes.append(f"scenario {name} broke: {exc!r}")
                    traceback.print_exc()
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(run_dir)], check=False)
    report.meta["elapsed_s"] = time.monotonic() - started
    scenarios.evaluate(report)
    text = markdown(report)
    print()
    print(text)
    path = report.write_json(args.results)
    print(f"JSON: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    failed = report.failed_requests()
    if failed:
        print(f"FAILED: {failed} request(s) failed", file=sys.stderr)
        return 1
    return 2 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
