"""Rules of the suite itself: what happens when an optional input is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_spec_tests_skip_with_a_reason_without_the_vendor_specs(tmp_path: Path) -> None:
    """Without `shared/vendor-specs` the spec checks are skipped and say why; nothing errors."""
    env = {**os.environ, "KEYGATE_VENDOR_SPECS": str(tmp_path / "absent")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/sandbox/test_specs.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vendor specs not found" in done.stdout
    assert " skipped" in done.stdout
    assert "error" not in done.stdout.splitlines()[-1]
