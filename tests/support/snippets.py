"""Running the code blocks of a document (the seeds, the generated skills) as a reader would."""

from __future__ import annotations

import os
import re
import subprocess
import sys

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
KEY_VARIABLES = ("KEYGATE_API_KEY", "MATON_API_KEY")


def fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """Every fenced code block of a markdown text: (info string's language, code)."""
    return [(m.group(1), m.group(2)) for m in _FENCE.finditer(markdown)]


def run_code(language: str, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a python or bash block in its own process, with only `env`'s API-key variables set."""
    command = {
        "python": [sys.executable, "-c", code],
        "bash": ["bash", "-euo", "pipefail", "-c", code],
    }[language]
    base = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    return subprocess.run(
        command,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
