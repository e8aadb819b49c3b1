"""Where the project's `shared/` folder (contract, seeds, vendor specs) stands, if anywhere."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path | None:
    """`shared/` beside the checkout (locally and in CI); `KEYGATE_SHARED_DIR` overrides."""
    candidates = [
        Path(os.environ["KEYGATE_SHARED_DIR"]) if "KEYGATE_SHARED_DIR" in os.environ else None,
        Path(__file__).resolve().parents[3] / "shared",
        Path(__file__).resolve().parents[4] / "shared",  # a git worktree one level deeper
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "spec").is_dir():
            return candidate
    return None
