"""CPU accounting: CPU seconds of a process tree, and how busy each core was, across a run.

CPU seconds per request is the measure that survives a noisy shared machine: when another
process steals the server core, throughput drops but the server's own CPU time per request
barely moves. It is also the only way to compare one worker with two on two cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil


def _summed(
    processes: Sequence[psutil.Process], seconds: Callable[[psutil.Process], float]
) -> float:
    total = 0.0
    for process in processes:
        try:
            total += seconds(process)
        except psutil.NoSuchProcess:
            continue
    return total


def _all_threads(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _main_thread(process: psutil.Process) -> float:
    return sum(t.user_time + t.system_time for t in process.threads() if t.id == process.pid)


def tree_cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    """User + system CPU seconds (all threads) of these processes so far."""
    return _summed(processes, _all_threads)


def main_thread_cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    """User + system CPU seconds of each process's main thread (the interpreter's, in Python)."""
    return _summed(processes, _main_thread)


def core_busy_seconds() -> list[float]:
    """Per-core non-idle seconds since boot (from /proc/stat)."""
    return [
        t.user + t.nice + t.system + t.irq + t.softirq + t.steal
        for t in psutil.cpu_times(percpu=True)
    ]


@dataclass
class CpuSample:
    """CPU used by the server under test over one measured run."""

    process_seconds: float
    wall_seconds: float
    core_busy: list[float]

    def per_request_us(self, requests: int) -> float:
        """Server CPU microseconds per request."""
        return 1e6 * self.process_seconds / requests if requests else 0.0


def with_cpu(
    processes: Callable[[], Sequence[psutil.Process]],
) -> Callable[[Callable[[], dict[str, Any]]], tuple[dict[str, Any], dict[str, float]]]:
    """A `measure(around=…)` hook recording the server's CPU time and each core's busy share.

    The server's CPU is also split out for its processes' main threads: in granian that is the
    interpreter's thread, the rest being its and pyreqwest's native (tokio) threads, so the
    split shows how much of a request's cost Python code could ever remove.
    """

    def around(run: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, float]]:
        procs = list(processes())
        cpu_before, main_before, cores_before, started = (
            tree_cpu_seconds(procs),
            main_thread_cpu_seconds(procs),
            core_busy_seconds(),
            (time.monotonic()),
        )
        raw = run()
        wall = time.monotonic() - started
        cpu = tree_cpu_seconds(procs) - cpu_before
        main = main_thread_cpu_seconds(procs) - main_before
        cores = [
            after - before for after, before in zip(core_busy_seconds(), cores_before, strict=True)
        ]
        sample = CpuSample(cpu, wall, cores)
        requests = raw["requests"]
        extra = {
            "server_cpu_s": round(cpu, 3),
            "server_cpu_us_per_req": round(sample.per_request_us(requests), 1),
            "main_thread_cpu_s": round(main, 3),
            "main_thread_cpu_us_per_req": round(1e6 * main / requests, 1) if requests else 0.0,
        }
        for index, busy in enumerate(cores):
            extra[f"core{index}_busy"] = round(busy / wall, 3) if wall else 0.0
        return raw, extra

    return around
