"""The run's results: the printed table, the ratios, each target met or not, JSON and Markdown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.proactive import summary_lines as proactive_summary
from bench.wrk import LoadResult


@dataclass
class Target:
    """One target of issue 4 and whether this run met it."""

    name: str
    goal: str
    value: float | None
    met: bool | None
    detail: str = ""

    def verdict(self) -> str:
        """'met', 'NOT met' or 'not run'."""
        if self.met is None:
            return "not run"
        return "met" if self.met else "NOT met"


@dataclass
class Report:
    """Everything one `make bench` run measured."""

    meta: dict[str, Any]
    loads: list[LoadResult] = field(default_factory=list)
    scenarios: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def load(self, label: str, connections: int) -> LoadResult | None:
        """The measurement with that label at that connection count."""
        for result in self.loads:
            if result.label == label and result.connections == connections:
                return result
        return None

    def failed_requests(self) -> int:
        """Requests that failed anywhere in the run (wrk errors, bad transfers, storm failures)."""
        failed = sum(result.errors for result in self.loads)
        for transfer in self.scenarios.get("bodies", {}).get("transfers", []):
            failed += 0 if transfer["ok"] else 1
        for storm in self.scenarios.get("refresh_storm", {}).get("runs", []):
            failed += storm["requests"] - storm["ok"]
        cost = self.scenarios.get("proactive_refresh")
        if cost:
            failed += cost["connections"] - cost["refreshed"]
        return failed

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "meta": self.meta,
            "loads": [result.as_dict() for result in self.loads],
            "scenarios": self.scenarios,
            "targets": [vars(target) | {"verdict": target.verdict()} for target in self.targets],
            "notes": self.notes,
            "failed_requests": self.failed_requests(),
        }

    def write_json(self, directory: Path) -> Path:
        """Write `bench/results/<timestamp>.json`."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.meta['started'].replace(':', '').replace('-', '')}.json"
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        return path


def ratio(top: float | None, bottom: float | None) -> float | None:
    """top / bottom, or None when either is missing."""
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


def load_table(loads: list[LoadResult]) -> str:
    """The main table as Markdown."""
    lines = [
        "| target | conns | req/s | p50 ms | p99 ms | errors | server CPU µs/req "
        "| of which main thread | server core busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in loads:
        cpu = r.extra.get("server_cpu_us_per_req")
        main = r.extra.get("main_thread_cpu_us_per_req")
        busy = r.extra.get("core1_busy")
        lines.append(
            f"| {r.label} | {r.connections} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.errors} | {'' if cpu is None else f'{cpu:.0f}'} | "
            f"{'' if main is None else f'{main:.0f}'} | "
            f"{'' if busy is None else f'{busy:.0%}'} |"
        )
    return "\n".join(lines)


def targets_table(targets: list[Target]) -> str:
    """Every target with its number and verdict, as Markdown."""
    lines = ["| target | goal | this run | verdict | detail |", "|---|---|---:|---|---|"]
    for t in targets:
        value = "-" if t.value is None else f"{t.value:.3g}"
        lines.append(f"| {t.name} | {t.goal} | {value} | {t.verdict()} | {t.detail} |")
    return "\n".join(lines)


def scenario_tables(scenarios: dict[str, Any]) -> str:
    """The further scenarios as Markdown."""
    parts: list[str] = []
    bodies = scenarios.get("bodies")
    if bodies:
        parts.append(
            "| transfer | bytes | status | MB/s | RSS before MB | peak RSS MB | growth MB |\n"
            "|---|---:|---:|---:|---:|---:|---:|"
        )
        for t in bodies["transfers"]:
            parts[-1] += (
                f"\n| {t['label']} | {t['bytes_moved']:,} | {t['status']} | {t['mb_per_s']:.0f} | "
                f"{t['rss_before_mb']:.1f} | {t['peak_rss_mb']:.1f} | {t['growth_mb']:.1f} |"
            )
    storm = scenarios.get("refresh_storm")
    if storm and storm.get("runs"):
        parts.append(
            "| storm | workers | requests | 200s | token requests | token latency ms | "
            "p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        )
        for s in storm["runs"]:
            parts[-1] += (
                f"\n| {s['label']} | {s['workers'] or '—'} | {s['requests']} | {s['ok']} | "
                f"{s['token_requests']} | {s['token_latency_ms']:.0f} | {s['p50_ms']:.1f} | "
                f"{s['p99_ms']:.1f} |"
            )
    elif storm:
        parts.append(f"Refresh storm: {storm.get('status', 'not run')}")
    cost = scenarios.get("proactive_refresh")
    if cost:
        parts.append("\n".join(proactive_summary(cost)))
    counted = scenarios.get("instructions")
    if counted and counted.get("counts"):
        bare = next((c["per_request"] for c in counted["counts"] if c["label"] == "bare"), None)
        parts.append(
            "| server (valgrind, 1 connection) | instructions/request | ÷ bare |\n|---|---:|---:|"
        )
        for c in counted["counts"]:
            share = f"{c['per_request'] / bare:.3f}" if bare else "-"
            parts[-1] += f"\n| {c['label']} | {c['per_request']:,} | {share} |"
    elif counted:
        parts.append(f"Instructions: {counted.get('status', 'not run')}")
    return "\n\n".join(parts)


def markdown(report: Report) -> str:
    """The whole run as the Markdown block RESULTS.md records."""
    meta = report.meta
    head = (
        f"### {meta['started']} — commit `{meta['commit']}`"
        f"{' (uncommitted changes in the tree)' if meta.get('dirty') else ''}\n\n"
        f"{meta['machine']}; {meta['duration_s']:.0f} s per measurement after a "
        f"{meta['warmup_s']:.0f} s warm-up; whole run {meta.get('elapsed_s', 0):.0f} s.\n"
    )
    body = [head, load_table(report.loads), "", targets_table(report.targets)]
    extra = scenario_tables(report.scenarios)
    if extra:
        body += ["", extra]
    if report.notes:
        body += ["", *[f"- {note}" for note in report.notes]]
    return "\n".join(body) + "\n"
