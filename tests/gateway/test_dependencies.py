"""The gateway depends on the parts it uses, never on the runtime that composes them."""

from __future__ import annotations

import ast
from pathlib import Path

import keygate.gateway

# The composition root and the surfaces built beside the gateway: the gateway is handed what it
# needs (see `keygate.app`), so a change to any of these cannot reach the hot path unseen.
UPPER = (
    "keygate.runtime",
    "keygate.app",
    "keygate.control",
    "keygate.connect",
    "keygate.cli",
    "keygate.ops",
)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_gateway_imports_no_upper_layer() -> None:
    package = Path(keygate.gateway.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 5
    found = {
        f"{path.name}: {name}"
        for path in modules
        for name in _imported(path)
        if any(name == upper or name.startswith(upper + ".") for upper in UPPER)
    }
    assert found == set()
