"""`python -m bench.startup` runs end to end (one run of each command) and prints its table.

No timing is asserted: the machine running the suite is shared; the numbers are for a person.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.startup import Row, table

ROOT = Path(__file__).resolve().parents[2]
ROW = r"\s+\d+\.\d\s+"


def test_the_script_prints_the_three_rows_with_targets() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.startup", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("CLI start-up: median wall time of 1 runs each\n")
    cpu = r"\s+\d+\.\d$"
    assert re.search(rf"^python -c pass{ROW}-\s+-{cpu}", out, re.M), out
    assert re.search(rf"^keygate --help{ROW}150\s+(yes|NO){cpu}", out, re.M), out
    assert re.search(rf"^keygate call constant-contact GET \S+{ROW}150\s+(yes|NO){cpu}", out, re.M)


def test_met_is_the_median_against_the_target() -> None:
    rows = [Row("a", 120.0, 150.0, 80.0), Row("b", 151.0, 150.0, 90.0), Row("c", 9.0, None)]
    lines = [line.split() for line in table(rows, 20).splitlines()[2:]]
    assert lines == [
        ["a", "120.0", "150", "yes", "80.0"],
        ["b", "151.0", "150", "NO", "90.0"],
        ["c", "9.0", "-", "-", "-"],
    ]
