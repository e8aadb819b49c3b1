"""The valgrind instruction count: the worker's total is picked out of granian's two logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.instructions import Count, worker_instructions


def _log(path: Path, pid: int, parent: int, refs: str | None) -> Path:
    lines = [
        f"=={pid}== Cachegrind, a high-precision tracing profiler",
        f"=={pid}== Command: /venv/bin/keygate serve --port 9000 --workers 1",
        f"=={pid}== Parent PID: {parent}",
        f"=={pid}==",
    ]
    if refs is not None:
        lines.append(f"=={pid}== I   refs:      {refs}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_worker_is_the_process_whose_parent_also_logged(tmp_path: Path) -> None:
    main = _log(tmp_path / "100.log", 100, 7, "4,032,173,824")
    worker = _log(tmp_path / "101.log", 101, 100, "423,070,768")
    assert worker_instructions([main, worker]) == 423_070_768
    assert worker_instructions([worker, main]) == 423_070_768


def test_a_worker_that_did_not_finish_is_an_error(tmp_path: Path) -> None:
    main = _log(tmp_path / "100.log", 100, 7, "4,032,173,824")
    worker = _log(tmp_path / "101.log", 101, 100, None)
    with pytest.raises(RuntimeError, match="one finished worker"):
        worker_instructions([main, worker])


def test_no_worker_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="one finished worker"):
        worker_instructions([_log(tmp_path / "100.log", 100, 7, "5")])


def test_per_request_excludes_start_up() -> None:
    count = Count(
        "keygate", few=200, many=1200, instructions_few=5_000_000, instructions_many=8_000_000
    )
    assert count.per_request == 3000
    assert count.as_dict()["per_request"] == 3000


def test_the_bare_verdict_carries_the_instruction_ratio() -> None:
    from bench.report import Report
    from bench.scenarios import evaluate

    report = Report(meta={})
    counts = [
        Count("bare", 200, 3200, 1_000_000, 301_000_000),
        Count("keygate", 200, 3200, 9_000_000, 369_000_000),
    ]
    report.scenarios["instructions"] = {"counts": [c.as_dict() for c in counts]}
    evaluate(report)
    (verdict,) = [t for t in report.targets if t.name.startswith("Keygate(1w)/bare")]
    assert verdict.detail == "by instructions (valgrind, 1 connection) 0.833"
    assert verdict.met is None  # the target is judged on throughput at 64 connections


def test_the_scale_verdict_uses_the_interleaved_rates_and_lists_each_turn() -> None:
    from bench.report import Report
    from bench.scenarios import evaluate

    report = Report(meta={})
    report.scenarios["scale"] = {
        "ratio": 0.94,
        "cpu_us_per_req_1_conn": 150.0,
        "cpu_us_per_req_100k": 160.0,
        "per_turn": [0.9, 1.02],
    }
    evaluate(report)
    (verdict,) = [t for t in report.targets if t.name == "100k conns / 1 conn"]
    assert (verdict.value, verdict.met) == (0.94, False)
    assert verdict.detail == "CPU/req 1 conn ÷ 100k 0.94; per turn 0.90 1.02"
